"""The managers' chat UI: typed chat state (``state``), handlers as plain functions (``handlers``),
the page layout and its wiring to Gradio (``app.build_app``), and ``serve`` (``peer-assist serve``).

Importing any of these modules has no side effects and does not import Gradio.
"""
