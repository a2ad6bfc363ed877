"""Record once, replay against any endpoint (``docs/replay.md``).

* :mod:`~pytest_agentspeed.replay.recording`: a session's requests as sent, with their
  answers' usage, stop reasons and marks and the gaps between them, in a compact file
  (``--agentspeed-record``);
* :mod:`~pytest_agentspeed.replay.session`: one recorded session sent again, open loop, to
  an endpoint, measured and recorded like a live session (``--agentspeed-replay``);
* :mod:`~pytest_agentspeed.run.capacity`: the sessions replayed at rising concurrency, to
  find how many agents an endpoint can serve (``agentspeed replay``).

Nothing here is imported by a pytest run that neither records nor replays.
"""
