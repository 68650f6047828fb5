"""The trainer's exit codes: the Job's podFailurePolicy keys on them.

`DETERMINISTIC` means the same inputs will fail the same way again (training code or data not
found, a bad parameter, malformed data, an install that cannot resolve): the policy turns it into
FailJob at once, so no retry loop burns GPU time. Anything else non-zero is retried up to the
Job's backoffLimit; a pod disruption (eviction, preemption) is ignored by the policy and does not
count at all.
"""

from __future__ import annotations

OK = 0
RETRYABLE = 1
DETERMINISTIC = 42
