"""Names shared by the API, the operator, the worker and the CRD generator.

Every name that more than one program writes or reads lives here: the resource's group,
version and kind; the labels, annotations and finalizer on MediaJobs and on what the operator
makes for them; condition types. Phases are `mediajob.Phase`; the worker's exit codes and
termination message are in `termination`.
"""

GROUP = "mediaflow.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MediaJob"
PLURAL = "mediajobs"
SINGULAR = "mediajob"
SHORT_NAMES = ["mj"]
CATEGORIES = ["mediaflow"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# Labels on every Job (and its pods, and its Secret of URLs) made for a MediaJob.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mediaflow-operator"
LABEL_MEDIAJOB = f"{GROUP}/mediajob"
# A MediaJob's name is the value of LABEL_MEDIAJOB: label values have at most 63 characters.
MAX_NAME_LENGTH = 63
# On every MediaJob: its status.phase, written by the operator whenever it sets the phase, so
# that lists can select MediaJobs by phase (a label selector; status fields cannot be
# selected on). A MediaJob made before the operator wrote it has none until the operator
# resumes it.
LABEL_PHASE = f"{GROUP}/phase"

# Annotations a MediaJob's owner sets (the API sets both on the MediaJobs it makes).
# `"true"`: stop a pending or running MediaJob for good (the operator's cancel handler).
ANNOTATION_CANCEL = f"{GROUP}/cancel"
# `"true"`: the input object goes with the MediaJob, if it is an upload made for it
# (naming.upload_prefix; the operator's finalizer, cancel and TTL expiry).
ANNOTATION_DELETE_INPUT = f"{GROUP}/delete-input"
# `mediaflow.io/cancel-item-<index>: "true"` on a MediaJob with spec.inputs: input `index`
# (its place in spec.inputs) is cancelled alone: it leaves its pod if it has not started, its
# status says Cancelled, its result (whenever it comes) and its own upload (delete-input) are
# deleted; the other inputs go on. (naming.cancel_item_annotation / cancelled_items.) The
# API cancels one file of a batch request this way.
ANNOTATION_CANCEL_ITEM_PREFIX = f"{GROUP}/cancel-item-"
# The id of the HTTP request that made the MediaJob (the API's `X-Request-ID`), so that one
# upload can be followed from the request through the operator's log lines to the pod's.
ANNOTATION_REQUEST_ID = f"{GROUP}/request-id"
# The request id of one file of a batch MediaJob is the request's: one annotation serves all.

# The operator's finalizer on every MediaJob (the reconciler adds and removes it). The same
# name Kopf kept for the operator before 0.4.0, so MediaJobs of earlier releases need nothing.
# (Those may also carry Kopf's old bookkeeping annotations under `operator.mediaflow.io/`,
# which nothing reads any more.)
FINALIZER = f"{GROUP}/cleanup"

# Condition types; the phase is derived from them (mediajob.Phase).
CONDITION_ACCEPTED = "Accepted"
CONDITION_SUCCEEDED = "Succeeded"
# With spec.notify: True once the completion webhook was delivered (a 2xx), False when it
# never will be, Unknown while attempts go on.
CONDITION_NOTIFIED = "Notified"

# The worker's exit codes (sysexits). 65 and 66 are final: the Job's podFailurePolicy fails
# it at once. Everything else is transient and retried within the Job's backoffLimit.
EXIT_OK = 0
EXIT_INVALID_INPUT = 65  # EX_DATAERR: bad, unsupported or hostile media, limits, bad options
EXIT_INPUT_NOT_FOUND = 66  # EX_NOINPUT: the input URL answered 4xx
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in the worker
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: network, storage, a tool killed by a signal, SIGTERM
EXIT_CONFIG = 78  # EX_CONFIG: the pod was started with a broken environment
FINAL_EXIT_CODES = (EXIT_INVALID_INPUT, EXIT_INPUT_NOT_FOUND)

# The reasons of a worker's failure termination message (termination.WorkerFailure).
REASON_INVALID_INPUT = "InvalidInput"
REASON_INPUT_NOT_FOUND = "InputNotFound"
REASON_TRANSIENT_ERROR = "TransientError"

# The worker pod's inputs (the operator's builders write them, the worker's settings read
# them): environment variables, and the files of the Job's Secret of presigned URLs, mounted
# read-only at URL_DIR (in the pod's environment they would be readable by everyone who may
# view Jobs or pods, the built-in `view` role).
ENV_OPERATION = "MEDIAFLOW_OPERATION"
ENV_OPTIONS = "MEDIAFLOW_OPTIONS"
ENV_URL_DIR = "MEDIAFLOW_URL_DIR"
ENV_WORK_DIR = "MEDIAFLOW_WORK_DIR"
ENV_MAX_INPUT_BYTES = "MEDIAFLOW_MAX_INPUT_BYTES"
ENV_THREADS = "MEDIAFLOW_THREADS"
# MEDIAFLOW_THREADS of a pod without a CPU limit: as many as the CPUs the pod may run on.
THREADS_AUTO = "auto"
ENV_INPUT_PUBLIC_ONLY = "MEDIAFLOW_INPUT_PUBLIC_ONLY"
ENV_VERIFY_DECODE = "MEDIAFLOW_VERIFY_DECODE"
# The API request that made the MediaJob (its ANNOTATION_REQUEST_ID): in every log line.
ENV_REQUEST_ID = "MEDIAFLOW_REQUEST_ID"
URL_DIR = "/var/run/secrets/mediaflow"
INPUT_URL_FILE = "input-url"
OUTPUT_URL_FILE = "output-url"
# An ImageConvert with renditions: one presigned PUT URL per rendition, in the file
# `output-url-<rendition name>` (instead of OUTPUT_URL_FILE).
RENDITION_URL_FILE_PREFIX = "output-url-"
WORK_DIR = "/work"

# Warm pods (docs/architecture.md, "The warm path"). A warm pod is a Job's pod that serves one
# owner's image MediaJobs one after another, until it has been idle for a while.
# Who owns a MediaJob, for the warm path: its namespace and, for the API's MediaJobs, this
# label (the API's user id). A warm pod never serves two owners.
LABEL_OWNER = f"{GROUP}/owner"
# On a warm pod's Job, pods and Secret: the Job's name (the session).
LABEL_SESSION = f"{GROUP}/session"
# The warm worker's inputs: the mode, and the file of its Secret with the GET URL of its
# mailbox's first slot (each slot holds the URL of the next).
ENV_SESSION = "MEDIAFLOW_SESSION"
ENV_SESSION_IDLE_SECONDS = "MEDIAFLOW_SESSION_IDLE_SECONDS"
ENV_SESSION_LIFETIME_SECONDS = "MEDIAFLOW_SESSION_LIFETIME_SECONDS"
ENV_SESSION_CONCURRENCY = "MEDIAFLOW_SESSION_CONCURRENCY"
ENV_SESSION_POLL_MS = "MEDIAFLOW_SESSION_POLL_MS"
MAILBOX_URL_FILE = "mailbox-url"
