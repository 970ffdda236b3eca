"""Names on the wire that are not fields: the API group and kind, labels and annotations.

Defined once here; the operator, its children, the kubectl plugin and the tests read them from
this module.
"""

from __future__ import annotations

GROUP = "modelrollout.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
LIST_KIND = "ModelDeploymentList"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("md", "mdep")
CATEGORIES = ("all", "modelrollout")

# Kopf's annotations and finalizer on ModelDeployments live under this prefix.
KOPF_PREFIX = GROUP
FINALIZER = f"{GROUP}/finalizer"

# Every child (Deployment, Service, holdout Job) carries NAME_LABEL = the ModelDeployment's name;
# a revision's Deployment and pods also carry REVISION_LABEL.
NAME_LABEL = f"{GROUP}/name"
REVISION_LABEL = f"{GROUP}/revision"
# A holdout-gate Job: the candidate revision it validates.
HOLDOUT_JOB_LABEL = f"{GROUP}/validation"
# On a holdout-gate Job: which validation request it answers.
REQUESTED_AT_ANNOTATION = f"{GROUP}/requested-at"
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelrollout"}
