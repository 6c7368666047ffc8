import json

from benchmarks import int8 as bench_int8


def test_int8_benchmark_compares_fp32_and_int8_in_one_evaluation(home, tiny_pipelines, tiny_embedder, tiny_squad):
    out = home / "int8.json"
    args = ["--model", f"tiny={tiny_embedder}", "--student", str(tiny_embedder), "--pipelines", str(tiny_pipelines)]
    args += ["--data", str(tiny_squad), "--questions", "4", "--warmup", "1", "--runs", str(home / "runs")]
    assert bench_int8.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert list(report["pipelines"]) == ["teacher", "tiny", "tiny-int8", "distilled", "distilled-int8"]
    assert report["dataset"]["questions"] == 4
    for name in ("tiny-int8", "distilled-int8"):
        models = report["pipelines"][name]["models"]["text_embedder"]
        assert (home / "runs" / name / "distill_onnx.json").is_file() and models["path"].endswith(name)
        assert report["pipelines"][name]["quality"]["ndcg@10"] > 0
