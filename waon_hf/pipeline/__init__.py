"""The shard-job contract, the runner (resume, global steps, finalize) and the executors."""
