"""The in-memory table stays correct while another process changes the database."""

import subprocess
import sys
import textwrap

from mlkernel.kernel import Kernel

READER = textwrap.dedent(
    """
    import sys
    import mlkernel

    k = mlkernel.open(sys.argv[1])
    print("ready", flush=True)
    for line in sys.stdin:
        ref = line.strip()
        try:
            record = k.resolve(ref)
            print(f"{record.kind}:{record.name}@{record.version}", flush=True)
        except mlkernel.MLKernelError as exc:
            print(f"error: {exc}", flush=True)
    """
)


def test_a_second_process_sees_every_change(project: Kernel) -> None:
    project.log_artifact({"v": 1}, kind="model", name="churn")
    project.alias_set("model:churn@1", "production")
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(project.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None

    def ask(ref: str) -> str:
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write(ref + "\n")
        reader.stdin.flush()
        return reader.stdout.readline().strip()

    try:
        assert reader.stdout.readline().strip() == "ready"
        assert ask("model:churn@production") == "model:churn@1"
        # the reader has the table in memory now; change the database behind its back
        project.log_artifact({"v": 2}, kind="model", name="churn")
        assert ask("churn") == "model:churn@2"
        project.alias_set("model:churn@2", "production")
        assert ask("model:churn@production") == "model:churn@2"
        project.alias_rm("model:churn", "production")
        assert ask("model:churn@production").startswith("error: model 'churn' has no alias")
        project.log_artifact(b"d", kind="dataset", name="fresh")
        assert ask("dataset:fresh") == "dataset:fresh@1"
        for version in range(3, 8):
            project.log_artifact({"v": version}, kind="model", name="churn")
            project.alias_set(f"model:churn@{version}", "staging")
            assert ask("model:churn@staging") == f"model:churn@{version}"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
