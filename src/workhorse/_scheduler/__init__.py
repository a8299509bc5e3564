"""What every backend shares: jobs and their sinks, units and the pending queue, batch
sizes, outcomes and retries, and finishing open work when the interpreter exits."""
