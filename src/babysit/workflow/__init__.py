"""The main job: ``babysit run`` walks the notes' whole workflow into one run directory."""

from .workflow import STAGES, Workflow, quick_config, run_workflow
from .runlog import RunLog, device_info, versions

__all__ = ["run_workflow", "Workflow", "quick_config", "STAGES", "RunLog", "versions", "device_info"]
