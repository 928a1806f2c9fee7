"""Renders the benchmark's templates and contexts with Python's Jinja2 (the engine Proton used),
and prints the mean time of each in microseconds, as JSON. Called by `cargo bench -p paved-core`."""

import json
import re
import sys
import time

import jinja2


def _entries(value):
    return list(value.items()) if isinstance(value, dict) else []


def _sanitize(value):
    text = str(value)
    if not (re.fullmatch(r"[a-zA-Z0-9_-]*", text) or text.startswith("arn:")):
        raise ValueError(f"proton_cfn_sanitize: {text!r}")
    return text


def ecs_env_vars(value, raw=True):
    items = [{"Name": k, "Value": v if raw else _sanitize(v)} for k, v in _entries(value)]
    return "\n".join(f"- Name: {json.dumps(i['Name'])}\n  Value: {json.dumps(i['Value'])}" for i in items)


def lambda_env_vars(value, raw=True):
    return "\n".join(f"{k}: {json.dumps(v if raw else _sanitize(v))}" for k, v in _entries(value))


def iam_policy_arns(value):
    arns = [v for _, v in _entries(value) if re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/.+", str(v))]
    return "\n".join(f"- {json.dumps(a)}" for a in arns)


def main():
    jobs = json.load(open(sys.argv[1]))
    iterations = int(sys.argv[2])
    env = jinja2.Environment()
    env.filters.update({
        "proton_cfn_ecs_task_definition_formatted_env_vars": ecs_env_vars,
        "proton_cfn_lambda_function_formatted_env_vars": lambda_env_vars,
        "proton_cfn_iam_policy_arns": iam_policy_arns,
        "proton_cfn_sanitize": _sanitize,
    })
    means = {}
    for job in jobs:
        # Parsing is part of the work, as it is for paved: a fresh template every time.
        env.from_string(job["source"]).render(job["context"])
        start = time.perf_counter()
        for _ in range(iterations):
            env.from_string(job["source"]).render(job["context"])
        means[job["name"]] = (time.perf_counter() - start) / iterations * 1e6
    json.dump(means, sys.stdout)


if __name__ == "__main__":
    main()
