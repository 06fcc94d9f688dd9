"""A stand-in for ``huggingface_hub.HfApi`` that records calls instead of reaching the Hub (tests run offline)."""

from pathlib import Path


class FakeHfApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        prefix = "datasets/" if kwargs.get("repo_type") == "dataset" else ""
        return f"https://huggingface.co/{prefix}{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        return "commit"

    def uploaded_files(self) -> list[str]:
        """Names of the files in the folder of the last upload_folder call."""
        kwargs = next(c[1] for c in reversed(self.calls) if c[0] == "upload_folder")
        return sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
