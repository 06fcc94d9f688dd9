"""The jobs of the stages: each reads one kind of source into a table for the shared shard contract
(:class:`waon_hf.pipeline.contract.ShardJob`)."""
