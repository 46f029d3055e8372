"""Facts about SageMaker instance types that the real-time and batch patterns both check."""
from __future__ import annotations

import re

# Instance families with local NVMe storage: SageMaker refuses a KmsKeyId for their volumes
# (EndpointConfig and TransformResources alike).
_INSTANCE_STORAGE_FAMILY = re.compile(r"ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|p4d|p4de|p5|p5e|trn1|inf2)\..+")
_BURSTABLE = re.compile(r"ml\.t\d[a-z]*\..+")


def has_instance_storage(instance_type: str) -> bool:
    """True for instance types with local NVMe volumes (``ml.m5d.*``, ``ml.g4dn.*``, ``ml.g5.*``...)."""
    return _INSTANCE_STORAGE_FAMILY.fullmatch(instance_type) is not None


def is_burstable(instance_type: str) -> bool:
    """``ml.t*`` instances cannot be registered as autoscaling targets."""
    return _BURSTABLE.fullmatch(instance_type) is not None
