# Run by the install phase of a rendered pipeline's CodeBuild projects (paved adds the line):
# writes the Proton model of the image's botocore, signing for execute-api, into ~/.aws/models,
# which every botocore in the build (the image's AWS CLI v2, a pip-installed CLI v1, boto3)
# reads before its own. paved's API in AWS verifies execute-api signatures only. Never fails
# the build: without a model, `aws proton` calls sign for proton as before.
import glob
import gzip
import importlib.util
import json
import os

folders = glob.glob("/usr/local/aws-cli/v2/*/dist/awscli/botocore/data")
for name in ("botocore", "awscli.botocore"):
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        spec = None
    if spec and spec.origin:
        folders.append(os.path.join(os.path.dirname(spec.origin), "data"))
for folder in folders:
    for file in ("service-2.json", "service-2.json.gz"):
        path = os.path.join(folder, "proton", "2020-07-20", file)
        if os.path.isfile(path):
            with (gzip.open(path) if file.endswith(".gz") else open(path, "rb")) as source:
                model = json.load(source)
            model["metadata"]["signingName"] = "execute-api"
            model["metadata"]["pavedClientSetup"] = path
            target = os.path.join(os.path.expanduser("~"), ".aws", "models", "proton", "2020-07-20")
            os.makedirs(target, exist_ok=True)
            with open(os.path.join(target, "service-2.json"), "w") as out:
                json.dump(model, out)
            print("paved: aws proton calls sign for execute-api (model of %s)" % path)
            raise SystemExit(0)
print("paved: no botocore Proton model found; aws proton calls sign for proton")
