# Settings files (intraneuron.settings): each stage's config subset, as an input of its jobs, so
# a changed setting reruns exactly the jobs it affects from the files alone, without Snakemake's
# .snakemake metadata (deleted, or absent when a run starts from another working directory).
from intraneuron.settings import PENDING, record_settings, write_pending

MODEL_SETTINGS = f"{MODEL_DIR}/settings"
_PENDING_SEEN = set()


def real_run():
    """A run that executes jobs: only it records changed settings (a dry run reports them)."""
    plugin = workflow.executor_plugin
    return plugin is not None and not workflow.dryrun and workflow.is_main_process


def settings_file(path, **parts):
    """An input function: `path` (formatted with the job's wildcards) holding `parts`, each a
    value or a function of the wildcards, written when it is missing or its content changed.
    Where a dry run finds changed settings it leaves `path` as it is and names a fresh copy with
    the new settings, `path` + PENDING, so its plan shows every job that the change reruns."""

    def get(wildcards):
        target = path.format(**dict(wildcards.items()))
        content = {k: v(wildcards) if callable(v) else v for k, v in parts.items()}
        pending = target + PENDING
        if record_settings(target, content, write_changes=real_run()) != "pending":
            if real_run() and os.path.exists(pending):
                os.remove(pending)
            return target
        if pending not in _PENDING_SEEN:
            _PENDING_SEEN.add(pending)
            write_pending(pending, content)
            print(f"intraneuron: settings changed: {target} (a run records them)", file=sys.stderr)
        return pending

    return get
