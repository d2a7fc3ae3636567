"""Benchmarks: every figure measured next to the tool people would use instead, as JSON.

``python -m bench.run`` (``make bench``) writes ``bench/results.json`` and prints a table; see
docs/bench.md for what each figure means and how it is measured.

- :mod:`bench.figures`: the :class:`Figure` record, the results file and the table;
- :mod:`bench.machine`: what the figures were measured on;
- :mod:`bench.stream`: the video every camera figure is fed, encoded once per run;
- :mod:`bench.replay_camera`: a Camera-port adapter that replays it, so encoding is not counted;
- :mod:`bench.ring_probe`: the child process that measures the pre-event ring's memory;
- :mod:`bench.peers`: the peer tools (ffmpeg), run as child processes;
- :mod:`bench.device`: the camera firmware's figures;
- :mod:`bench.triggers`, :mod:`bench.trigger_camera`: trigger latency on the sim radio;
- :mod:`bench.evidence`, :mod:`bench.servers`, :mod:`bench.sink_server`: evidence-store ingest
  against curl into a sink;
- :mod:`bench.dock`, :mod:`bench.dock_memory`: dock offload MB/s for 1, 3 and 8 cameras against
  sha256sum, curl and rclone (:mod:`bench.dock_peers`, to the S3 endpoint of
  :mod:`bench.s3_target`), and the dock's peak memory with a large clip; :mod:`bench.dock_rig`
  runs the offloads over :mod:`bench.dock_clips` (sealed clips), :mod:`bench.dock_camera` (a
  docked camera's offload API) and :mod:`bench.dock_probe` (the running dock), each its own
  process;
- :mod:`bench.update`: a camera's firmware install over its offload API against the same steps
  in a shell script (cat, sync, sha256sum, cp);
- :mod:`bench.run`: the entry point and the list of benchmarks;
- :mod:`bench.scale`: the scale model (docs/scale.md) from a results file.
"""
