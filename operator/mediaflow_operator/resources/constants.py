"""Names shared by the API, the operator, the worker and the CRD generator."""

GROUP = "mediaflow.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MediaJob"
PLURAL = "mediajobs"
SINGULAR = "mediajob"
SHORT_NAMES = ["mj"]
CATEGORIES = ["mediaflow"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# Labels on every Job (and its pods) made for a MediaJob.
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

# Condition types and the phases derived from them.
CONDITION_ACCEPTED = "Accepted"
CONDITION_SUCCEEDED = "Succeeded"

# Worker exit codes (the contract in DESIGN.md): invalid input and missing input are final.
EXIT_INVALID_INPUT = 65
EXIT_INPUT_NOT_FOUND = 66
