"""moto_server, with the fixes paved's local platform needs. Each fix names the moto behaviour
it corrects; everything else is moto as released. Run with the project's venv Python."""

import copy
import json
import os
import sys
import threading
import time

import moto.awslambda.models as awslambda
import moto.cloudformation.models as models
from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
import moto.dynamodb.models as dynamodb
import moto.dynamodb.models.table as dynamodb_table
import moto.dynamodb.exceptions as dynamodb_exceptions
from moto.dynamodb.models.dynamo_type import DynamoType
import moto.dynamodb.responses as dynamodb_responses
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
import moto.ecr.models as ecr
import moto.ec2.models.security_groups as ec2_security_groups
import moto.ecs.models as ecs
import moto.cloudformation.parsing as parsing
import moto.cloudformation.responses as responses
import yaml

_clean_json = parsing.clean_json


def clean_json(resource_json, resources_map):
    # moto 5.2.5 does not resolve the argument of Fn::GetAZs, so the common
    # `Fn::GetAZs: {Ref: AWS::Region}` yields zones named after a dict and subnets fail.
    if isinstance(resource_json, dict) and isinstance(resource_json.get("Fn::GetAZs"), dict):
        resource_json = {"Fn::GetAZs": _clean_json(resource_json["Fn::GetAZs"], resources_map)}
    # moto skips resource types it does not emulate (AppRunner, CodeBuild, ...); an attribute
    # of one then fails the whole template. Give it a value that says what it is.
    if isinstance(resource_json, dict) and isinstance(resource_json.get("Fn::GetAtt"), list):
        name, attribute = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
        declared = getattr(resources_map, "_resource_json_map", {})
        if name in declared and resources_map.get(name) is None:
            # ARN-shaped, since such attributes are mostly ARNs that policies check.
            return f"arn:aws:not-emulated-by-moto:us-east-1:123456789012:{name}/{attribute}"
    return _clean_json(resource_json, resources_map)


parsing.clean_json = clean_json

_validate_outputs = parsing.ResourceMap.validate_outputs


def validate_outputs(self):
    # moto 5.2.5 raises AttributeError validating an output that reads an attribute of a
    # resource type it does not emulate, and the stack then reports no outputs at all.
    try:
        _validate_outputs(self)
    except AttributeError:
        pass


parsing.ResourceMap.validate_outputs = validate_outputs


def yaml_tag_constructor(loader, tag, node):
    # moto 5.2.5 returns the raw YAML nodes of a short-form function written as a block
    # sequence or mapping (`!GetAtt` followed by `- Resource` and `- Attribute` lines), so the
    # stack fails with "references undefined resource ScalarNode(...)". Construct them.
    key = "Ref" if tag == "!Ref" else f"Fn::{tag[1:]}"
    if isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif tag == "!GetAtt":
        value = node.value.split(".")
    else:
        value = node.value
    return {key: value}


for module in (responses, models):
    module.yaml_tag_constructor = yaml_tag_constructor

_execute_change_set = models.CloudFormationBackend.execute_change_set


def execute_change_set(self, change_set_name, stack_name=None):
    # moto 5.2.5 applies a change set's resources but keeps the stack's old template for its
    # outputs, so a stack created or updated through a change set reports none (or stale ones).
    _execute_change_set(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None
    )
    if change_set is not None:
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        # moto 5.2.5 keeps a stack's tags from its creation; CloudFormation gives the stack
        # the tags of an executed UPDATE change set that names any.
        if change_set.tags:
            stack.tags = dict(change_set.tags)


models.CloudFormationBackend.execute_change_set = execute_change_set

_create_change_set = models.CloudFormationBackend.create_change_set


def create_change_set(self, stack_name, change_set_name, template, parameters, description,
                      change_set_type, notification_arns=None, tags=None, role_arn=None):
    # moto 5.2.5 makes a second stack of the same name for a CREATE change set, and a second
    # change set of the same name; CloudFormation refuses both (AlreadyExistsException), which
    # is what a retried CreateChangeSet whose first answer was lost meets.
    for existing in self.change_sets.values():
        if existing.change_set_name == change_set_name and existing.stack.name == stack_name \
                and existing.stack.status != "DELETE_COMPLETE":
            raise AlreadyExistsException(f"ChangeSet [{change_set_name}] already exists")
    if change_set_type == "CREATE" and any(
            stack.name == stack_name and stack.status != "DELETE_COMPLETE" for stack in self.stacks.values()):
        raise AlreadyExistsException(f"Stack [{stack_name}] already exists")
    # moto 5.2.5 calls an UPDATE change set with the stack's template and parameters "no
    # changes" even when its tags differ; CloudFormation counts a tag change as a change.
    change_set_id, stack_id = _create_change_set(
        self, stack_name, change_set_name, template, parameters, description,
        change_set_type, notification_arns, tags, role_arn,
    )
    change_set = self.change_sets[change_set_id]
    stack = self.stacks[stack_id]
    if change_set.status == "FAILED" and tags and dict(tags) != dict(stack.tags or {}):
        change_set.status = "CREATE_COMPLETE"
        change_set.execution_status = "AVAILABLE"
        change_set.status_reason = None
    return change_set_id, stack_id


models.CloudFormationBackend.create_change_set = create_change_set

# CloudFormation says of each modified resource whether the change replaces it (Replacement
# True when a property whose update needs a new resource changes); moto 5.2.5 never says so. These
# are such properties (from the CloudFormation resource reference: "Update requires: Replacement")
# of the types the samples and tests use.
REPLACED_BY = {
    "AWS::EC2::VPC": {"CidrBlock", "InstanceTenancy"},
    "AWS::EC2::Subnet": {"CidrBlock", "AvailabilityZone", "VpcId"},
    "AWS::SQS::Queue": {"QueueName", "FifoQueue"},
    "AWS::SNS::Topic": {"TopicName", "FifoTopic"},
    "AWS::S3::Bucket": {"BucketName"},
    "AWS::ECR::Repository": {"RepositoryName"},
    "AWS::DynamoDB::Table": {"TableName"},
    "AWS::ECS::Cluster": {"ClusterName"},
    "AWS::Lambda::Function": {"FunctionName"},
    "AWS::ElasticLoadBalancingV2::LoadBalancer": {"Name", "Scheme"},
    "AWS::IAM::Role": {"RoleName", "Path"},
}

_change_set_diff = models.ChangeSet.diff


def change_set_diff(self):
    changes = _change_set_diff(self)
    old = getattr(self.stack.resource_map, "_resource_json_map", {}) or {}
    new = (self.template_dict or {}).get("Resources", {}) or {}
    for change in changes:
        before = old.get(change.logical_resource_id)
        resource = self.stack.resource_map._parsed_resources.get(change.logical_resource_id) \
            if hasattr(self.stack.resource_map, "_parsed_resources") else None
        physical = getattr(resource, "physical_resource_id", None)
        if change.action != "Add" and physical:
            change.physical_resource_id = physical
        if change.action != "Modify" or before is None:
            continue
        after = new.get(change.logical_resource_id, {})
        if before.get("Type") != after.get("Type"):
            change.replacement = "True"
            continue
        keys = REPLACED_BY.get(after.get("Type"), set())
        old_props = before.get("Properties", {}) or {}
        new_props = after.get("Properties", {}) or {}
        change.replacement = "True" if any(old_props.get(k) != new_props.get(k) for k in keys) else "False"
    return changes


models.ChangeSet.diff = change_set_diff

_ecs_service_init = ecs.Service.__init__


def ecs_service_init(self, cluster, service_name, desired_count, *args, **kwargs):
    # moto 5.2.5 does arithmetic on DesiredCount as given; CloudFormation accepts the quoted
    # numbers that Jinja templates often render (`DesiredCount: '{{ inputs.desired_count }}'`).
    if isinstance(desired_count, str) and desired_count.strip().isdigit():
        desired_count = int(desired_count)
    _ecs_service_init(self, cluster, service_name, desired_count, *args, **kwargs)


ecs.Service.__init__ = ecs_service_init

_ecs_update_service = ecs.EC2ContainerServiceBackend.update_service


def ecs_update_service(self, service_properties):
    # The same on update: moto 5.2.5 stores a quoted DesiredCount as text, and the next update
    # of the service fails negating it.
    count = service_properties.get("desired_count")
    if isinstance(count, str) and count.strip().isdigit():
        service_properties["desired_count"] = int(count)
    return _ecs_update_service(self, service_properties)


ecs.EC2ContainerServiceBackend.update_service = ecs_update_service

_security_group_create = ec2_security_groups.SecurityGroup.create_from_cloudformation_json.__func__


def security_group_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # moto 5.2.5 requires FromPort and ToPort on every ingress rule; CloudFormation does not for
    # IpProtocol -1 (all traffic), which the samples use. Missing ports mean all ports (-1).
    for rule in cloudformation_json.get("Properties", {}).get("SecurityGroupIngress", []) or []:
        if isinstance(rule, dict):
            rule.setdefault("FromPort", -1)
            rule.setdefault("ToPort", -1)
    return _security_group_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


ec2_security_groups.SecurityGroup.create_from_cloudformation_json = classmethod(security_group_create)

_ecr_create = ecr.Repository.create_from_cloudformation_json.__func__


def ecr_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # moto 5.2.5 names an unnamed repository after the stack and logical id, upper case and
    # repeated separators (Proton's `...-cloudformation--...` stack names) included, then rejects
    # that name; CloudFormation generates valid lower-case names.
    import re
    name = re.sub(r"[._-]{2,}", "-", resource_name.lower())
    return _ecr_create(cls, name, cloudformation_json, account_id, region_name, **kwargs)


ecr.Repository.create_from_cloudformation_json = classmethod(ecr_create)

_transact_write_items = dynamodb.DynamoDBBackend.transact_write_items
_transactions = threading.Lock()


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB backend during a transaction:
    moto 5.2.5 deep-copies the whole table once per item of every transaction, to roll back
    with (at about 400 services `paved dev`'s moto held 13 GB). Tables are not copied; the
    items the transaction touches are saved and restored instead (`_touched`, `_restore`)."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, dynamodb_table.Table):
            return value
        return copy.deepcopy(value, memo)


def _named(backend, entry):
    """The table and key attributes of the item a transaction entry names, or None."""
    if len(entry) != 1:
        return None
    _, op = next(iter(entry.items()))
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    key = op.get("Key") or op.get("Item") or {}
    parts = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if not all(p in key for p in parts):
        return None
    return table, {p: key[p] for p in parts}


def _touched(backend, transact_items):
    """(table, hash key, range key, a copy of the item or None) of each item a transaction
    names, before it runs."""
    saved = []
    for entry in transact_items:
        named = _named(backend, entry)
        if named is None:
            continue
        table, key = named
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        current = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved):
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            if hash_value in table.items:
                table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


# DynamoDB cancels a transaction that names an item another transaction in flight names
# (TransactionConflict); moto runs them one after another and never does. With
# PAVED_MOTO_CONTENTION_MS set, each transaction holds its items for that long, as DynamoDB's
# commit does, and one that meets a held item is cancelled the way DynamoDB cancels it: what
# paved's transactions must survive with a fleet writing at once.
_CONTENTION_SECONDS = float(os.environ.get("PAVED_MOTO_CONTENTION_MS", "0") or 0) / 1000
_in_flight = set()
_in_flight_lock = threading.Lock()


def _item_key(backend, entry):
    named = _named(backend, entry)
    if named is None:
        return None
    table, key = named
    return (table.name, json.dumps(key, sort_keys=True))


def _contended(backend, transact_items):
    keys = [_item_key(backend, entry) for entry in transact_items]
    with _in_flight_lock:
        held = [k is not None and k in _in_flight for k in keys]
        if any(held):
            print("paved-contention: TransactionConflict", file=sys.stderr, flush=True)
            raise dynamodb_exceptions.TransactionCanceledException([
                ("TransactionConflict", "Transaction is ongoing for the item", None) if h else (None, None, None)
                for h in held])
        _in_flight.update(k for k in keys if k is not None)
    return [k for k in keys if k is not None]


def transact_write_items(self, transact_items):
    if _CONTENTION_SECONDS > 0:
        keys = _contended(self, transact_items)
        try:
            time.sleep(_CONTENTION_SECONDS)
            return _transact_write_items_isolated(self, transact_items)
        finally:
            with _in_flight_lock:
                _in_flight.difference_update(keys)
    return _transact_write_items_isolated(self, transact_items)


def _transact_write_items_isolated(self, transact_items):
    # moto 5.2.5 checks a transaction's conditions and then writes without isolation, so two
    # concurrent transactions on one item can both pass (DynamoDB serialises them): run them
    # one at a time, as the conditional writes paved relies on require. And it copies whole
    # tables to roll back with; only the touched items are kept here (see _NoTableCopy).
    with _transactions:
        if os.environ.get("PAVED_MOTO_COPY_TABLES") == "1":
            # moto's own way, for `make bench-moto` to compare against.
            return _transact_write_items(self, transact_items)
        saved = _touched(self, transact_items)
        dynamodb.copy = _NoTableCopy
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            _restore(saved)
            raise
        finally:
            dynamodb.copy = copy


dynamodb.DynamoDBBackend.transact_write_items = transact_write_items

_transact_write_items_response = dynamodb_responses.DynamoHandler.transact_write_items
_client_tokens = {}
_tokens = threading.Lock()


def transact_write_items_response(self):
    # moto 5.2.5 ignores a transaction's ClientRequestToken. DynamoDB answers a repeat of an
    # applied transaction (same token and items, within 10 minutes) with success and applies
    # nothing, and a repeat with other items with IdempotentParameterMismatchException: a retry
    # whose first answer was lost must not meet its own write as a failed condition.
    token = self.body.get("ClientRequestToken")
    if not token:
        return _transact_write_items_response(self)
    fingerprint = json.dumps(self.body["TransactItems"], sort_keys=True)
    with _tokens:
        seen = _client_tokens.get(token)
    if seen and time.monotonic() - seen[1] < 600:
        if seen[0] != fingerprint:
            raise JsonRESTError(
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                "the ClientRequestToken was used with other items")
        return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
    # Not under the lock: transactions of different tokens run at once, as in DynamoDB (the
    # backend isolates them; see transact_write_items).
    answer = _transact_write_items_response(self)
    with _tokens:
        _client_tokens[token] = (fingerprint, time.monotonic())
    return answer


dynamodb_responses.DynamoHandler.transact_write_items = transact_write_items_response

_permission_create = awslambda.Permission.create_from_cloudformation_json.__func__


def permission_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # moto 5.2.5 fails listing a stack's resources when a Lambda permission names a function it
    # does not hold (one made by the AWS::Serverless transform, which moto does not run): the
    # permission is recorded without attaching it to a function.
    try:
        return _permission_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    except Exception:  # noqa: BLE001 - any failure to find the function
        return awslambda.Permission(region=region_name)


awslambda.Permission.create_from_cloudformation_json = classmethod(permission_create)

# moto 5.2.5 has no drift detection (DetectStackDrift, DescribeStackDriftDetectionStatus,
# DescribeStackResourceDrifts answer "not implemented"). This compares, as CloudFormation does,
# the properties a stack's template sets with the live resource, for the types paved's local
# runs change behind its back: SSM parameters (Value, Type, Description) and SQS queues (their
# attributes). A resource whose live object is gone is DELETED; other types are NOT_CHECKED.
# A detection completes at once.
import uuid

from moto.ssm.models import ssm_backends
from moto.sqs.models import sqs_backends

_drift_lock = threading.Lock()
_detections = {}
_last_detection = {}

_SQS_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                   "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds")


def _scalar(value):
    return value if isinstance(value, (str, int, float, bool)) else None


def _resource_drift(stack, logical_id, resource):
    kind = resource.get("Type", "")
    expected = resource.get("Properties") or {}
    entry = {"StackId": stack.stack_id, "LogicalResourceId": logical_id, "ResourceType": kind,
             "Timestamp": time.time(), "StackResourceDriftStatus": "IN_SYNC", "PropertyDifferences": []}
    model = stack.resource_map._parsed_resources.get(logical_id)
    physical = getattr(model, "physical_resource_id", None)
    if physical:
        entry["PhysicalResourceId"] = physical
    differences = []
    if kind == "AWS::SSM::Parameter":
        live = ssm_backends[stack.account_id][stack.region_name].get_parameter(physical or "")
        if live is None:
            entry["StackResourceDriftStatus"] = "DELETED"
            return entry
        for prop, actual in (("Value", live.value), ("Type", live.parameter_type),
                             ("Description", live.description)):
            want = _scalar(expected.get(prop))
            if want is not None and str(want) != str(actual):
                differences.append((prop, want, actual))
    elif kind == "AWS::SQS::Queue":
        name = (physical or "").rsplit("/", 1)[-1]
        try:
            live = sqs_backends[stack.account_id][stack.region_name].get_queue(name)
        except Exception:  # noqa: BLE001 - moto raises its own "does not exist"
            entry["StackResourceDriftStatus"] = "DELETED"
            return entry
        for prop in _SQS_ATTRIBUTES:
            want = _scalar(expected.get(prop))
            actual = getattr(live, "".join("_" + c.lower() if c.isupper() else c for c in prop).lstrip("_"), None)
            if want is not None and actual is not None and str(want) != str(actual):
                differences.append((prop, want, actual))
    else:
        entry["StackResourceDriftStatus"] = "NOT_CHECKED"
        return entry
    if differences:
        entry["StackResourceDriftStatus"] = "MODIFIED"
        entry["PropertyDifferences"] = [
            {"PropertyPath": f"/{prop}", "ExpectedValue": str(want), "ActualValue": str(actual),
             "DifferenceType": "NOT_EQUAL"} for prop, want, actual in differences]
    return entry


def detect_stack_drift(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    resources = (stack.template_dict or {}).get("Resources") or {}
    drifts = [_resource_drift(stack, logical_id, resource) for logical_id, resource in resources.items()]
    detection = str(uuid.uuid4())
    with _drift_lock:
        _detections[detection] = (stack.stack_id, drifts, time.time())
        _last_detection[stack.stack_id] = detection
        _last_detection[stack.name] = detection
    return ActionResult({"StackDriftDetectionId": detection})


def describe_stack_drift_detection_status(self):
    detection = self._get_param("StackDriftDetectionId")
    with _drift_lock:
        found = _detections.get(detection)
    if found is None:
        raise ValidationError(detection, message=f"Drift detection {detection} does not exist")
    stack_id, drifts, at = found
    drifted = sum(1 for d in drifts if d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED"))
    return ActionResult({
        "StackId": stack_id, "StackDriftDetectionId": detection,
        "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC",
        "DetectionStatus": "DETECTION_COMPLETE", "DriftedStackResourceCount": drifted, "Timestamp": at})


def describe_stack_resource_drifts(self):
    name = self._get_param("StackName")
    wanted = self._get_param("StackResourceDriftStatusFilters") or None
    with _drift_lock:
        detection = _last_detection.get(name)
        drifts = _detections[detection][1] if detection else []
    return ActionResult({"StackResourceDrifts": [
        d for d in drifts if wanted is None or d["StackResourceDriftStatus"] in wanted]})


responses.CloudFormationResponse.detect_stack_drift = detect_stack_drift
responses.CloudFormationResponse.describe_stack_drift_detection_status = describe_stack_drift_detection_status
responses.CloudFormationResponse.describe_stack_resource_drifts = describe_stack_resource_drifts

if __name__ == "__main__":
    from moto.server import main

    main()
