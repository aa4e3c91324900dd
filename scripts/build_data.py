"""Build the shipped suites in data/ from the read-only sources in ../shared/data.

This script is the record of how data/ was made; the package itself only ever reads data/.
Run it with `make data`. Every cleaning step is counted in data/build_report.json and described in
data/SOURCE.md.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from emafusion_core.data.io import save_suite
from emafusion_core.data.prices import PriceTable, count_tokens
from emafusion_core.data.suite import Suite

RB_MODELS = {  # RouterBench name -> (family, litellm id for live use)
    "WizardLM/WizardLM-13B-V1.2": ("wizardlm", "together_ai/WizardLM/WizardLM-13B-V1.2"),
    "claude-instant-v1": ("anthropic", "anthropic/claude-instant-1.2"),
    "claude-v1": ("anthropic", "anthropic/claude-1"),
    "claude-v2": ("anthropic", "anthropic/claude-2"),
    "gpt-3.5-turbo-1106": ("openai", "openai/gpt-3.5-turbo-1106"),
    "gpt-4-1106-preview": ("openai", "openai/gpt-4-1106-preview"),
    "meta/code-llama-instruct-34b-chat": ("meta", "together_ai/codellama/CodeLlama-34b-Instruct-hf"),
    "meta/llama-2-70b-chat": ("meta", "together_ai/meta-llama/Llama-2-70b-chat-hf"),
    "mistralai/mistral-7b-chat": ("mistral", "together_ai/mistralai/Mistral-7B-Instruct-v0.1"),
    "mistralai/mixtral-8x7b-chat": ("mistral", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"),
    "zero-one-ai/Yi-34B-Chat": ("01-ai", "together_ai/zero-one-ai/Yi-34B-Chat"),
}
RL_GPT4, RL_MIXTRAL = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
RL_MODELS = {RL_GPT4: ("openai", "openai/gpt-4-1106-preview"),
             RL_MIXTRAL: ("mistral", "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1")}
RB_BENCHMARKS = {"arc-challenge": "multiple_choice", "winogrande": "multiple_choice", "mbpp": "code"}
# Each solved exemplar in RouterBench's 5-shot prompts ends with "Answer:" and its letter.
EXEMPLAR_END = re.compile(r"Answer:\s*\n?\s*[A-E]\s*\n\n")
MMLU_DEFECT_SUBJECT = "high_school_mathematics"
MMLU_OUTPUT_TOKENS = 1  # assumption: the source keeps no MMLU responses; the answer is one letter


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def literal_list(text) -> list:
    if isinstance(text, float) and np.isnan(text):
        return []
    value = ast.literal_eval(text)
    return list(value) if isinstance(value, (list, tuple)) else [value]


def models_table(spec: dict, prices: PriceTable) -> pd.DataFrame:
    rows = []
    for model, (family, litellm_id) in spec.items():
        p_in, p_out = prices.price(model)
        rows.append(dict(model=model, family=family, litellm_model=litellm_id,
                         input_usd_per_mtok=p_in, output_usd_per_mtok=p_out))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- RouterBench
def build_routerbench(src: Path, prices: PriceTable, report: dict) -> Suite:
    files = sorted(src.glob("*.csv"))
    raw = pd.concat([pd.read_csv(f).assign(_file=f.name) for f in files], ignore_index=True)
    report["inputs"].update({f"routerbench-subset/{f.name}": sha256(f) for f in files})
    models = list(RB_MODELS)
    raw["_prompt_list"] = raw["prompt"].map(literal_list)
    raw["_n_prompt"] = raw["_prompt_list"].map(len)
    r = {"rows_read": len(raw), "distinct_ids": int(raw["sample_id"].nunique())}

    # Merge the questions split across two rows: row A (one-element prompt list) has the prompt, the
    # costs and 10 scores; row B (the prompt twice) has only GPT-3.5's score. Scores from whichever
    # row has them; prompt, costs and responses from row A.
    merged_rows, n_pairs = [], 0
    for sample_id, group in raw.groupby("sample_id", sort=False):
        if len(group) == 1:
            merged_rows.append(group.iloc[0])
            continue
        n_pairs += 1
        row_a = group.loc[group["_n_prompt"] == 1]
        if len(group) != 2 or len(row_a) != 1:
            raise SystemExit(f"unexpected duplicate layout for {sample_id}")
        row = row_a.iloc[0].copy()
        for model in models:
            values = group[model].dropna().unique()
            if len(values) > 1:
                raise SystemExit(f"conflicting scores for {sample_id} / {model}")
            row[model] = values[0] if len(values) else np.nan
        merged_rows.append(row)
    rb = pd.DataFrame(merged_rows).reset_index(drop=True)
    r["split_pairs_merged"] = n_pairs
    r["missing_scores_after_merge"] = int(rb[models].isna().sum().sum())
    rb = rb.dropna(subset=models, how="all")

    # Oracle recomputed from the scores (cheapest model among those with the best score).
    costs = rb[[f"{m}|total_cost" for m in models]].to_numpy(float)
    scores = rb[models].to_numpy(float)
    best = scores == scores.max(axis=1, keepdims=True)
    oracle = np.where(scores.max(axis=1) > 0,
                      np.array(models)[np.argmin(np.where(best, costs, np.inf), axis=1)], "no_model_correct")
    r["oracle_column_disagreements"] = int((oracle != rb["oracle_model_to_route_to"].to_numpy()).sum())

    queries, outcomes = [], []
    n_multi_response = 0
    for _, row in rb.iterrows():
        prompt = row["_prompt_list"][0]
        benchmark = row["eval_name"]
        pieces = EXEMPLAR_END.split(prompt) if benchmark != "mbpp" else [prompt]
        queries.append(dict(query_id=row["sample_id"], benchmark=benchmark, prompt=prompt,
                            question=pieces[-1].strip(), category="",
                            answer_format=RB_BENCHMARKS[benchmark], n_shot=len(pieces) - 1,
                            contaminated=False))
        in_tokens = count_tokens(prompt)
        for model in models:
            responses = literal_list(row[f"{model}|model_response"])
            n_multi_response += len(responses) > 1
            response = responses[0] if responses else None
            outcomes.append(dict(query_id=row["sample_id"], model=model, score=float(row[model]),
                                 cost_usd=float(row[f"{model}|total_cost"]), cost_source="recorded",
                                 response=response, input_tokens=in_tokens,
                                 output_tokens=count_tokens(response)))
    q, o = pd.DataFrame(queries), pd.DataFrame(outcomes)
    r["responses_with_more_than_one_element"] = n_multi_response
    r["n_shot_by_benchmark"] = q.groupby("benchmark")["n_shot"].agg(lambda s: sorted(set(s))).to_dict()
    r["queries"] = len(q)
    r["queries_by_benchmark"] = q["benchmark"].value_counts().sort_index().to_dict()
    report["routerbench"] = r

    # How well does our estimator (cl100k tokens x list price) reproduce the recorded costs?
    check = {}
    for model in (RL_GPT4, "mistralai/mixtral-8x7b-chat"):
        sub = o[o["model"] == model]
        est = prices.cost(model, sub["input_tokens"].to_numpy(), sub["output_tokens"].to_numpy())
        rec = sub["cost_usd"].to_numpy()
        ratio = est / np.where(rec > 0, rec, np.nan)
        check[model] = dict(queries=len(sub), estimated_total_usd=round(float(est.sum()), 6),
                            recorded_total_usd=round(float(rec.sum()), 6),
                            ratio_of_totals=round(float(est.sum() / rec.sum()), 4),
                            median_query_ratio=round(float(np.nanmedian(ratio)), 4),
                            share_within_5pct=round(float(np.nanmean(np.abs(ratio - 1) <= 0.05)), 4))
    report["cost_estimate_check_on_routerbench"] = check
    return Suite.from_tables("routerbench", q, o, models_table(RB_MODELS, prices))


# --------------------------------------------------------------------------- RouteLLM
def _contaminated(path: Path, report: dict) -> set[str]:
    report["inputs"][f"routellm-evals/{path.parent.name}/{path.name}"] = sha256(path)
    return {json.loads(line)["eval_prompt"].strip() for line in path.read_text().splitlines() if line.strip()}


def _estimated(query_id, model, score, in_tokens, out_tokens, prices, response=None):
    return dict(query_id=query_id, model=model, score=float(score),
                cost_usd=float(prices.cost(model, in_tokens, out_tokens)), cost_source="estimated",
                response=response, input_tokens=int(in_tokens), output_tokens=int(out_tokens))


def build_mmlu(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> None:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    r = {"files": 0, "rows_read": 0, "excluded_subject": MMLU_DEFECT_SUBJECT}
    hits = 0
    for path in sorted(src.glob("mmlu_*.csv")):
        report["inputs"][f"routellm-evals/mmlu_responses/{path.name}"] = sha256(path)
        subject = path.stem.removeprefix("mmlu_")
        df = pd.read_csv(path)
        r["files"] += 1
        r["rows_read"] += len(df)
        if subject == MMLU_DEFECT_SUBJECT:
            r["excluded_rows"] = len(df)
            r["excluded_gpt4_accuracy"] = round(float(df[RL_GPT4].astype(float).mean()), 4)
            r["excluded_mixtral_accuracy"] = round(float(df[RL_MIXTRAL].astype(float).mean()), 4)
            continue
        for i, row in df.iterrows():
            qid = f"mmlu.{subject}.{i}"
            is_cont = row["prompt"].strip() in contaminated
            hits += is_cont
            queries.append(dict(query_id=qid, benchmark="mmlu", prompt=row["prompt"], question=row["prompt"],
                                category=subject, answer_format="multiple_choice", n_shot=0,
                                contaminated=is_cont))
            n_in = count_tokens(row["prompt"])
            for model in (RL_GPT4, RL_MIXTRAL):
                outcomes.append(_estimated(qid, model, bool(row[model]), n_in, MMLU_OUTPUT_TOKENS, prices))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    r["duplicate_prompts"] = int(pd.Series([q["prompt"] for q in queries if q["benchmark"] == "mmlu"]).duplicated().sum())
    report["routellm"]["mmlu"] = r


def build_gsm8k(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> None:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    for name in ("gsm8k_responses.csv", "test.jsonl"):
        report["inputs"][f"routellm-evals/gsm8k/{name}"] = sha256(src / name)
    test = [json.loads(line) for line in (src / "test.jsonl").read_text().splitlines() if line.strip()]
    index = {item["question"].strip(): i for i, item in enumerate(test)}
    df = pd.read_csv(src / "gsm8k_responses.csv")
    r = {"rows_read": len(df), "matched_to_test_jsonl": 0}
    hits = 0
    for i, row in df.iterrows():
        text = row["prompt"].strip()
        source_index = index.get(text)
        r["matched_to_test_jsonl"] += source_index is not None
        qid = f"gsm8k.test.{source_index if source_index is not None else f'row{i}'}"
        is_cont = text in contaminated
        hits += is_cont
        queries.append(dict(query_id=qid, benchmark="gsm8k", prompt=row["prompt"], question=row["prompt"],
                            category="", answer_format="number", n_shot=0, contaminated=is_cont))
        n_in = count_tokens(row["prompt"])
        for model in (RL_GPT4, RL_MIXTRAL):
            response = row[f"{model}_response"]
            response = None if pd.isna(response) else str(response)
            outcomes.append(_estimated(qid, model, bool(row[model]), n_in, count_tokens(response), prices,
                                       response))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    report["routellm"]["gsm8k"] = r


_CONVERSATION = re.compile(
    r"### User:\n(?P<q1>.*?)\n\n### Assistant A:\n(?P<a1>.*?)\n\n### User:\n(?P<q2>.*?)\n\n"
    r"### Assistant A:\n(?P<a2>.*?)\n\n<\|The End of Assistant A's Conversation with User\|>", re.S)


def build_mt_bench(src: Path, prices: PriceTable, report: dict, queries: list, outcomes: list) -> pd.DataFrame:
    contaminated = _contaminated(src / "contaminated_prompts.jsonl", report)
    for name in ("question.jsonl", "judgements.jsonl"):
        report["inputs"][f"routellm-evals/mt_bench/{name}"] = sha256(src / name)
    questions = [json.loads(line) for line in (src / "question.jsonl").read_text().splitlines() if line.strip()]
    judgments = [json.loads(line) for line in (src / "judgements.jsonl").read_text().splitlines() if line.strip()]
    by_key = {}
    for j in judgments:
        by_key[(j["question_id"], j["model"], j["turn"])] = j
    r = {"questions": len(questions), "judgments": len(judgments)}
    judgment_rows, hits = [], 0
    for q in questions:
        qid = f"mt-bench.{q['question_id']}"
        turn1, turn2 = q["turns"][0], q["turns"][1]
        is_cont = turn1.strip() in contaminated
        hits += is_cont
        queries.append(dict(query_id=qid, benchmark="mt-bench", prompt=f"{turn1}\n\n[Follow-up turn]\n{turn2}",
                            question=turn1, category=q["category"], answer_format="free_text", n_shot=0,
                            contaminated=is_cont))
        for model in (RL_GPT4, RL_MIXTRAL):
            j1, j2 = by_key[(q["question_id"], model, 1)], by_key[(q["question_id"], model, 2)]
            conv = _CONVERSATION.search(j2["user_prompt"].split("<|The Start of Assistant A's Conversation with User|>")[-1])
            if conv is None:
                raise SystemExit(f"cannot extract the answers of {model} on {qid}")
            a1, a2 = conv["a1"], conv["a2"]
            # Two calls: turn 1 (question), then turn 2 (question, answer, follow-up).
            n_in = count_tokens(turn1) * 2 + count_tokens(a1) + count_tokens(turn2)
            n_out = count_tokens(a1) + count_tokens(a2)
            score = (float(j1["score"]) + float(j2["score"])) / 2 / 10  # GPT-4 rating 1-10 -> [0.1, 1]
            outcomes.append(_estimated(qid, model, score, n_in, n_out, prices,
                                       f"{a1}\n\n[Follow-up turn]\n{a2}"))
            for turn, j in ((1, j1), (2, j2)):
                judgment_rows.append(dict(query_id=qid, model=model, judge="/".join(j["judge"]), turn=turn,
                                          judge_prompt=j["user_prompt"], judgment=j["judgment"],
                                          rating=float(j["score"])))
    r["contaminated_listed"], r["contaminated_matched"] = len(contaminated), hits
    report["routellm"]["mt_bench"] = r
    return pd.DataFrame(judgment_rows)


def build_routellm(src: Path, prices: PriceTable, report: dict) -> Suite:
    report["routellm"] = {}
    queries, outcomes = [], []
    build_mmlu(src / "mmlu_responses", prices, report, queries, outcomes)
    build_gsm8k(src / "gsm8k", prices, report, queries, outcomes)
    judgments = build_mt_bench(src / "mt_bench", prices, report, queries, outcomes)
    q, o = pd.DataFrame(queries), pd.DataFrame(outcomes)
    report["routellm"]["queries"] = len(q)
    report["routellm"]["queries_by_benchmark"] = q["benchmark"].value_counts().sort_index().to_dict()
    report["routellm"]["contaminated_total"] = int(q["contaminated"].sum())
    return Suite.from_tables("routellm", q, o, models_table(RL_MODELS, prices), judgments)


# --------------------------------------------------------------------------- RouterBench extra
def build_extra(src: Path, report: dict) -> pd.DataFrame:
    """Scores and costs only (no prompts): for the models table and sanity checks, never for routing."""
    folder = src / "phi_router_umass"
    files = [folder / "11models_actual_response_0shot.csv", folder / "11models_log_probs_random_1000_samples_0shot.csv"]
    report["inputs"].update({f"routerbench-extra/phi_router_umass/{f.name}": sha256(f) for f in files})
    df = pd.concat([pd.read_csv(f) for f in files]).drop_duplicates("sample_id").reset_index(drop=True)
    df["benchmark"] = df["sample_id"].str.extract(r"^(.*?)\.(?:dev|val|test)\.")[0]
    df["benchmark"] = df["benchmark"].str.replace(r"^mmlu-.*", "mmlu", regex=True)
    df["benchmark"] = df["benchmark"].str.replace(r"^mtbench.*", "mt-bench", regex=True)
    df["benchmark"] = df["benchmark"].replace({"grade-school-math": "gsm8k"})
    rows = []
    for model in RB_MODELS:
        rows.append(pd.DataFrame({"sample_id": df["sample_id"], "benchmark": df["benchmark"], "model": model,
                                  "score": df[f"{model}_correctness"].astype(float),
                                  "cost_usd": df[f"{model}_cost"].astype(float)}))
    out = pd.concat(rows, ignore_index=True)
    report["routerbench_extra"] = {"distinct_ids": int(df["sample_id"].nunique()),
                                   "by_benchmark": df["benchmark"].value_counts().sort_index().to_dict()}
    return out


def compare_with_extra(routellm: Suite, extra: pd.DataFrame, report: dict) -> None:
    """Our estimated RouteLLM costs beside RouterBench's recorded 0-shot costs on the same benchmarks.

    Different prompts (RouterBench adds instructions), so this checks the order of magnitude only."""
    rows = {}
    for bench in ("mmlu", "gsm8k"):
        ours = routellm.outcomes.merge(routellm.queries[["query_id", "benchmark"]], on="query_id")
        ours = ours[ours["benchmark"] == bench].groupby("model")["cost_usd"].mean()
        theirs = extra[extra["benchmark"] == bench].groupby("model")["cost_usd"].mean()
        for ours_name, theirs_name in ((RL_GPT4, RL_GPT4), (RL_MIXTRAL, "mistralai/mixtral-8x7b-chat")):
            rows[f"{bench}/{ours_name}"] = dict(estimated_mean_usd=float(f"{ours[ours_name]:.4g}"),
                                                routerbench_recorded_mean_usd=float(f"{theirs[theirs_name]:.4g}"),
                                                ratio=round(float(ours[ours_name] / theirs[theirs_name]), 3))
    report["cost_estimate_vs_routerbench_0shot_means"] = rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args()
    prices = PriceTable(pd.read_csv(args.out / "prices.csv"), str(args.out / "prices.csv"))
    report: dict = {"inputs": {}}
    rb = build_routerbench(args.shared / "routerbench-subset", prices, report)
    rl = build_routellm(args.shared / "routellm-evals", prices, report)
    extra = build_extra(args.shared / "routerbench-extra", report)
    compare_with_extra(rl, extra, report)
    save_suite(rb, args.out / "routerbench")
    save_suite(rl, args.out / "routellm")
    (args.out / "routerbench_extra").mkdir(exist_ok=True)
    extra.to_parquet(args.out / "routerbench_extra" / "scores.parquet", index=False, compression="zstd")
    report["inputs"] = dict(sorted(report["inputs"].items()))
    (args.out / "build_report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "inputs"}, indent=1, default=str))


if __name__ == "__main__":
    main()
