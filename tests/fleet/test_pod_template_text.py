"""`rollout history --revision` text against a golden captured from kubectl 1.37.2."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fleet.pod_template_text import describe_pod_template

DATA = Path(__file__).parent / "data"


def test_describe_pod_template_matches_kubectl_golden():
    rs = json.loads((DATA / "rich_rs.json").read_text())
    template = copy.deepcopy(rs["template"])
    # kubectl copies the RS's change-cause into the printed template's annotations.
    template["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = (
        rs["annotations"]["kubernetes.io/change-cause"])
    text = "deployment.apps/rich with revision #1\n" + describe_pod_template(template) + "\n"
    assert text == (DATA / "rich_history_rev1.txt").read_text()
