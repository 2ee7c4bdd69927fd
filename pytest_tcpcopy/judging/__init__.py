"""Judging a replay as its results arrive, in memory that does not grow with the capture.

- ``sessions``: the capture read again, lazily, for the captured sessions whose results arrive;
- ``problems``: what the copier's typed results say went wrong (cut responses, outcomes, a dead
  SUT), as ``compare.ReplayProblem``s;
- ``stream``: ``StreamingJudge``, which joins the copiers' result streams with the captured
  sessions and judges each session as soon as it is whole;
- ``verdicts``: ``RunVerdicts``, what a judged run keeps of its verdicts.

Nothing here imports pytest, and the modules are imported one by one (``model`` needs only
``verdicts``).
"""
