# Checks when a run starts, and the report pages' staleness marks at its start and end.
onstart:
    problem = gpu_request_problem(
        workflow.executor_plugin.name if workflow.executor_plugin else None,
        dict(rules.extract.rule.resources),
        min((cfg["model"]["device"] for cfg in MODELS.values()), key=lambda d: d == "cpu"),
    )
    if problem:
        sys.exit(f"intraneuron: {problem}")
    # A page whose job runs is stale until it is rebuilt: moved aside, marked, so a failed run
    # leaves no page that looks current. (Pages of models whose jobs do not run stay.)
    for job in workflow.dag.needrun_jobs():
        if job.rule.name.endswith(("overview", "report_model")):  # module rules carry a prefix
            page = job.output[0]
            stale = retire_report(page)
            if stale:
                print(
                    f"intraneuron: {page} moved to {stale} (marked STALE) until this run "
                    "rebuilds it",
                    file=sys.stderr,
                )


onsuccess:
    for page in (REPORT_HTML, *MODEL_PAGES):
        drop_stale_report(page)
