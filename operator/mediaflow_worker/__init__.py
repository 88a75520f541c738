"""The program inside each MediaJob's Job pod: one input URL in, one converted file out.

Contract with the operator (see docs/worker.md for the details and the hardening):

Inputs, by environment variable:

- ``MEDIAFLOW_OPERATION``: ``ImageConvert``, ``ImageResize``, ``VideoConvert``, ``VideoRotate``,
  ``VideoResize``, ``VideoTrim`` or ``VideoThumbnail``.
- ``MEDIAFLOW_OPTIONS``: JSON of that operation's options, camelCase keys, validated by the models
  in ``mediaflow_core.options``.
- ``MEDIAFLOW_URL_DIR`` (default ``/var/run/secrets/mediaflow``, the pod's Secret volume):
  the files ``input-url`` (presigned GET URL, or a user's http/https URL) and ``output-url``
  (presigned PUT URL). Not environment variables: a pod's environment is readable by whoever
  may read the Job or the pod; a Secret only by whoever may read Secrets.
- ``MEDIAFLOW_WORK_DIR`` (default ``/work``, an emptyDir): every file, and the tools' TMPDIR.
- Limits: ``MEDIAFLOW_MAX_INPUT_BYTES`` (2 GiB), ``MEDIAFLOW_MAX_PIXELS`` (100 megapixels per
  frame), ``MEDIAFLOW_MAX_FRAMES`` (2000 animation frames), ``MEDIAFLOW_MAX_DURATION_SECONDS``
  (4 hours), ``MEDIAFLOW_THREADS`` (1: ffmpeg ``-threads``, cwebp ``-mt`` above 1, avifenc
  ``--jobs``), ``MEDIAFLOW_FETCH_TIMEOUT_SECONDS`` (900, the whole download).
- ``MEDIAFLOW_VERIFY_DECODE`` (default ``1``): decode image outputs before the job succeeds
  (WebP/AVIF while the upload runs); ``0`` checks type and size from the header only.
- ``MEDIAFLOW_TERMINATION_LOG`` (default ``/dev/termination-log``).

Outputs:

The exit codes are ``mediaflow_core.constants.EXIT_*``; the termination message is
``mediaflow_core.termination`` (WorkerResult, WorkerFailure), which the operator reads back.

- Exit code 0: success. 65: invalid input (bad, unsupported or hostile media, limits exceeded,
  timestamp past the end, bad options); the Job's podFailurePolicy fails at once. 66: input not
  found (the input URL answered 4xx). Anything else is transient and retried: 75 (network,
  storage, a tool killed by a signal, SIGTERM), 70 (a worker bug), 78 (a broken environment).
- Termination message (JSON, under 4096 bytes). Success: ``{"size", "contentType", "format",
  "width", "height", "duration"}`` (width/height null only if unknown, duration null for images).
  Failure: ``{"reason": "InvalidInput" | "InputNotFound" | "TransientError", "message"}``.
- stdout: JSON lines ``{"event": ...}``; video operations print ``{"event": "progress",
  "percent": 42.5}`` at most once a second. Logs never hold file contents or URL query strings.
"""
