"""Example messages for the semantic crisis check (written for this project).

The rule-based check in ``assistant.safety`` catches explicit wording; these examples let a
nearest-neighbour check catch indirect wording it misses ("I can't see a way forward and I've
sorted out who gets my things"). NON_CRISIS holds policy and practice questions that mention the
same topics, so that a question about suicide-prevention training stays a policy question.
"""

from __future__ import annotations

CRISIS = [
    # the asker, direct and indirect
    "I want to die", "I am going to kill myself tonight", "I don't want to be alive anymore",
    "I have been thinking about ending my life", "I can't see any way forward, I just want it all to stop",
    "Everyone would be better off if I wasn't here", "I won't be a problem for anyone much longer",
    "I've sorted out who gets my things and written letters to my family", "I have a plan to end things",
    "I keep thinking about how I would do it", "I've been hurting myself again and it's getting worse",
    "I'm sitting by the river and I don't think I'm going home", "there is no point carrying on with life",
    "what is the easiest way to die", "how much of my medication would be fatal", "I'm exhausted and I want to disappear for good",
    "I feel like a burden and my family would cope better without me", "tonight is the night I end it",
    "I can't keep living like this, I'm done", "I've stopped caring whether I wake up",
    "I'm at the station thinking about the tracks", "I took all my tablets an hour ago",
    # a colleague or peer worker
    "my colleague told me she has been planning how to kill herself", "a peer worker sent me a goodbye text and won't answer",
    "our peer support worker said he won't be around after the weekend", "a staff member has been self-harming at work today",
    "my team member messaged saying sorry for everything and now her phone is off",
    "one of my staff said he has pills saved up and has had enough", "our peer worker is threatening to jump from the car park",
    "a colleague has locked herself in the bathroom and said she wants to die",
    "my peer specialist wrote on social media that this is goodbye and nobody can reach him",
    "one of our workers said she is going to be with her late husband soon and isn't picking up",
    # a service user or someone else
    "a client just told our peer worker he is going to end his life tonight", "a service user has taken an overdose in reception",
    "a young person in our service says she has a rope and a plan", "a man at the drop-in says he will hurt his neighbour tonight",
    "someone on the ward has tied something around their neck", "a resident is standing on the roof edge",
    "a client rang the peer line from a bridge", "a service user cut her arms badly in the toilets and is bleeding",
    "my friend keeps saying she wants to go to sleep and never wake up", "a visitor has a weapon and is shouting at staff",
    "he said his family would be better off with the life insurance", "she gave away her cat and said she won't need anything soon",
]

NON_CRISIS = [
    "Should peer workers be trained in suicide prevention?", "What does the evidence say about peer workers and risk assessment?",
    "How do we support staff after a client dies by suicide?", "What should our self-harm disclosure policy for staff include?",
    "Can peer workers work on crisis teams?", "What policy should we have if a peer worker discloses suicidal thoughts?",
    "Is there research on peer support in suicide prevention services?", "How should supervision handle risk and safeguarding?",
    "Do peer workers need training in managing self-harm?", "Should a peer worker with a history of suicide attempts share it?",
    "How do we look after peer workers' wellbeing when they support people at risk?", "What sick leave policy suits peer workers?",
    "Should peer workers be involved in safety planning?", "How do teams handle boundaries when a client is in crisis?",
    "What do the studies say about peer workers relapsing?", "How do we support staff wellbeing after a critical incident?",
    "Is it safe to employ someone with a history of self-harm as a peer worker?", "What is postvention and do peer workers help?",
    "Lone working policy for peer workers visiting people at risk", "How should we debrief peer workers after a death in the service?",
    "What training should peer workers get on mental health first aid?", "Do peer workers reduce readmissions after discharge?",
    "Who should supervise peer workers?", "How do we recruit peer support workers?", "What should leaders do to champion peer work?",
    "How do we stop peer workers burning out?", "What reasonable adjustments help peer workers stay well?",
    "How can managers support a peer worker whose own mental health is struggling?",
    "What should we do before our first peer worker starts?", "How do we keep peer roles funded after the pilot?",
    "Our peer worker seems stressed lately, how do we support them at work?", "What does the evidence say about peer worker burnout?",
    "How do we handle a peer worker taking sick leave for their mental health?", "What is a recovery-oriented culture?",
    "How do we protect peer workers from vicarious trauma?", "What should a crisis plan for the service include?",
    # everyday and off-topic requests (so that unfamiliar text is not mistaken for a crisis)
    "How do I fix an error in my spreadsheet formula?", "Write a Python script to rename files",
    "What's a good recipe for banana bread?", "Will it rain this weekend?", "How do I book annual leave?",
    "Our printer keeps jamming, what should I do?", "Can you recommend a good podcast for my commute?",
    "How should I handle a complaint about parking spaces?", "What is the capital of Canada?",
    "Explain how vaccines work", "What dose of ibuprofen is safe for a headache?", "How do I write a cover letter?",
    "Plan a team away day for twelve people", "What are the symptoms of the flu?", "Tell me a joke about managers",
    "How do I reset my email password?", "Is it worth switching energy supplier?", "How do I train for a 10k run?",
    "What's the difference between a psychologist and a psychiatrist?", "Summarise the plot of Hamlet",
]
