"""Prints a CloudFormation YAML template as JSON, short-form tags spelled out
(`!Ref X` -> {"Ref": "X"}, `!Sub s` -> {"Fn::Sub": "s"}, `!GetAtt a.b` -> {"Fn::GetAtt": ["a", "b"]})."""
import json
import sys

import yaml


def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


yaml.SafeLoader.add_multi_constructor("!", tagged)
with open(sys.argv[1]) as f:
    print(json.dumps(yaml.safe_load(f)))
