"""An embedding run writes the encoder's EncodePlan (what it ran: precision asked and run, dtype,
device, tile) to its manifest."""

from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding
from satclip.embedding.state import read_manifest
from satclip.nn import LocationEncoder


def test_an_embedding_run_records_its_plan(tmp_path):
    enc = LocationEncoder(4, 16, 1, 8, precision="bf16").eval()
    out = run_embedding(enc, S.GridSource(30.0, chunk_points=50), tmp_path / "out", fmt="npy", progress=False)
    plan = read_manifest(out)["plan"]
    assert plan == enc.plan(device="cpu").as_dict() and plan["precision"] == "bf16"
