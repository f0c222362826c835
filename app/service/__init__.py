"""The service layer: the one way every front end plans, checks, queues, runs, stores, compares,
costs and reports runs (ARCHITECTURE.md, "Layers").

- ``plan``: a ``RunRequest`` (what the user asked, in no front end's words) becomes a checked
  ``RunPlan`` of run specs; the parsers of what people type live here too.
- ``queue``: the ``RunQueue`` runs specs one at a time (begin → run → finish → store), reports
  every change as a ``QueueEvent`` and goes on after a failure.
- ``workbench``: one open run store and everything done with stored runs (listing, tags,
  notes, cost profiles, bundles, comparisons, reports).
- ``inventory``: the model catalog, the devices every runtime reaches, the power sensors.

Nothing here imports Qt or a vendor library; long work is a plain blocking call that the GUI's
controller runs on its threads and the CLI runs in order.
"""
