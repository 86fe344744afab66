#!/usr/bin/env python3
"""Regenerate the oslo.policy ground truth used by AllotPolicyTests.

Run with the Python of a venv holding openstack-placement==16.0.0 (and the
oslo.policy it pulls in), from this directory:

    ~/.cache/allot-bench/venv/bin/python generate_fixtures.py

It writes:
  oslo_expectations.json  parser trees, check evaluations and, for every
                          registered placement rule, the decision of
                          Enforcer.authorize for a set of personas, for new
                          defaults and for legacy mode, with and without
                          operator policy files;
  sample-policy.yaml      output of ``oslopolicy-sample-generator
                          --namespace placement``;
  effective-policy.yaml   output of ``oslopolicy-policy-generator
                          --namespace placement`` with operator-policy.yaml.

"Legacy" means enforce_new_defaults=False and no scope enforcement.
oslo.policy >= 6 has no enforce_scope option any more (scope types are always
enforced), so legacy mode switches the scope check off by overriding
Enforcer._enforce_scope, which is what enforce_scope=False did in earlier
oslo.policy releases (it only logged a warning).
"""

from importlib import metadata
import json
import logging
import os
import sys
import tempfile

from oslo_config import cfg
from oslo_context import context
from oslo_policy import _checks
from oslo_policy import _parser
from oslo_policy import generator
from oslo_policy import opts as policy_opts
from oslo_policy import policy
from placement import policies

HERE = os.path.dirname(os.path.abspath(__file__))

PERSONAS = {
    "project_admin": dict(user_id="u-admin", project_id="p1",
                          roles=["admin", "member", "reader"]),
    "project_admin_mixed_case": dict(user_id="u-admin2", project_id="p1",
                                     roles=["Admin"]),
    "project_member": dict(user_id="u-member", project_id="p1",
                           roles=["member", "reader"]),
    "project_reader": dict(user_id="u-reader", project_id="p1",
                           roles=["reader"]),
    "other_project_reader": dict(user_id="u-reader2", project_id="p2",
                                 roles=["reader"]),
    "other_project_member": dict(user_id="u-member2", project_id="p2",
                                 roles=["member", "reader"]),
    "service": dict(user_id="u-nova", project_id="service",
                    roles=["service"]),
    "service_token_only": dict(user_id="u-user", project_id="p1",
                               roles=["member", "reader"],
                               service_roles=["service", "admin"]),
    "system_admin": dict(user_id="u-sysadmin", system_scope="all",
                         roles=["admin", "member", "reader"]),
    "system_reader": dict(user_id="u-sysreader", system_scope="all",
                          roles=["reader"]),
    "domain_admin": dict(user_id="u-domadmin", domain_id="d1",
                         roles=["admin", "member", "reader"]),
    "admin_no_project": dict(user_id="u-admin3", roles=["admin"]),
    "no_roles": dict(user_id="u-none", project_id="p1", roles=[]),
    "operator_role": dict(user_id="u-op", project_id="p1",
                          roles=["operator"]),
}

TARGET = {"project_id": "p1", "user_id": "u-target"}

# Operator policy files: scenario name -> YAML text.
OPERATOR_FILES = {
    "operator": open(os.path.join(HERE, "operator-policy.yaml")).read(),
    "renamed_deprecated": (
        '"rule:admin_api": "role:superuser"\n'
        '"service_api": "role:service or role:nova"\n'
    ),
}

PARSE_CASES = [
    "", "@", "!", "role:admin", "rule:admin_api", "ROLE:admin",
    "role:admin or role:service", "role:admin and role:service",
    "role:a or role:b and role:c", "role:a and role:b or role:c",
    "role:a or role:b and role:c and role:d",
    "role:a and role:b or role:c and role:d",
    "role:a or (role:b and role:c) and role:d",
    "(role:a and role:b) and role:c",
    "(role:a or role:b) and role:c", "role:a and (role:b or role:c)",
    "not role:a", "not role:a and role:b", "role:a and not role:b",
    "not (role:a or role:b)", "not not role:a", "NOT role:a OR role:b AND role:c",
    "((role:a))", "( role:a )", "(role:a)or(role:b)",
    "role:admin or (project_id:%(project_id)s and role:projectadmin)",
    "project_id:%(project_id)s and not role:dunce",
    "True:%(user.enabled)s", "'Member':%(role.name)s", "domain_id:20",
    "project_id:xpto2035abc", "user_id:'xpto2035abc'",
    "role:admin or", "or role:admin", "role:admin role:reader", "(role:admin",
    "role:admin)", "()", "not", "admin", "'admin'", "role:admin and and role:b",
    "   ", "role:a or or role:b", "rule:a:b", "role:admin)(",
]

# (check string, persona, target) -> bool
EVAL_CASES = [
    ("role:ADMIN", "project_admin", TARGET),
    ("role:admin", "project_admin_mixed_case", TARGET),
    ("roles:Admin", "project_admin_mixed_case", TARGET),
    ("roles:admin", "project_admin_mixed_case", TARGET),
    ("project_id:%(project_id)s", "project_reader", TARGET),
    ("project_id:%(project_id)s", "other_project_reader", TARGET),
    ("project_id:%(missing)s", "project_reader", TARGET),
    ("role:%(role)s", "project_reader", {"role": "READER"}),
    ("role:%(role)s", "project_reader", {}),
    ("project_id:p1", "project_reader", {}),
    ("p1:%(project_id)s", "project_reader", TARGET),
    ("'p1':%(project_id)s", "project_reader", TARGET),
    ("\"p1\":%(project_id)s", "project_reader", TARGET),
    ("True:%(enabled)s", "project_reader", {"enabled": "True"}),
    ("False:%(enabled)s", "project_reader", {"enabled": "True"}),
    ("20:%(n)s", "project_reader", {"n": "20"}),
    ("-20:%(n)s", "project_reader", {"n": "-20"}),
    ("is_admin_project:True", "project_reader", {}),
    ("system_scope:all", "system_admin", {}),
    ("system:all", "system_admin", {}),
    ("system_scope:all", "project_admin", {}),
    ("system:all", "project_admin", {}),
    ("domain_id:d1", "domain_admin", {}),
    ("user_id:%(user_id)s", "project_reader", {"user_id": "u-reader"}),
    ("service_roles:service", "service_token_only", {}),
    ("role:service", "service_token_only", {}),
    ("user_id:'u-reader'", "project_reader", {}),
    ("not role:admin", "project_reader", {}),
    ("not role:reader", "project_reader", {}),
    ("role:reader and not role:admin", "project_reader", {}),
    ("role:a or role:reader and role:b", "project_reader", {}),
    ("(role:a or role:reader) and role:b", "project_reader", {}),
    ("role:reader or role:a and role:b", "project_reader", {}),
    ("@", "no_roles", {}),
    ("!", "project_admin", {}),
    ("", "no_roles", {}),
    ("nonexistent:x", "project_admin", {}),
    ("project_id:100%%", "project_reader", {}),
    ("project_id:%(project_id)s%%", "project_reader", {"project_id": "p"}),
]


def make_context(p):
    return context.RequestContext(
        user_id=p.get("user_id"), project_id=p.get("project_id"),
        domain_id=p.get("domain_id"), roles=list(p.get("roles", [])),
        system_scope=p.get("system_scope"),
        service_roles=list(p.get("service_roles", [])))


class LegacyEnforcer(policy.Enforcer):
    """enforce_scope=False as in oslo.policy < 6: scope types not checked."""

    def _enforce_scope(self, creds, rule, *, do_raise):
        return True


def make_conf(new_defaults):
    conf = cfg.ConfigOpts()
    policy_opts.set_defaults(conf)  # what placement.conf.register_opts does
    conf([], default_config_files=[])
    conf.set_override("enforce_new_defaults", new_defaults,
                      group="oslo_policy")
    return conf


def make_enforcer(mode, policy_file=None):
    conf = make_conf(mode == "new")
    cls = policy.Enforcer if mode == "new" else LegacyEnforcer
    enf = cls(conf, policy_file=policy_file or "nonexistent-policy.yaml")
    enf.suppress_default_change_warnings = True
    enf.suppress_deprecation_warnings = True
    enf.register_defaults(policies.list_rules())
    enf.load_rules()
    return enf


def decide(enf, name, creds):
    try:
        enf.authorize(name, dict(TARGET), creds, do_raise=True)
        return "allowed"
    except policy.InvalidScope:
        return "invalid_scope"
    except policy.PolicyNotAuthorized:
        return "denied"


def matrix(enf):
    out = {}
    for name in enf.registered_rules:
        out[name] = {pn: decide(enf, name, make_context(p))
                     for pn, p in PERSONAS.items()}
    return out


def evaluated(enf):
    return {name: str(enf.rules[name]) for name in enf.registered_rules}


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def parse_trees():
    cap = Capture()
    log = logging.getLogger("oslo_policy._parser")
    log.addHandler(cap)
    log.propagate = False
    out = []
    for s in PARSE_CASES:
        cap.records.clear()
        tree = _parser.parse_rule(s)
        failed = any(r.levelno >= logging.ERROR for r in cap.records)
        out.append({"rule": s, "tree": str(tree), "error": failed})
    log.removeHandler(cap)
    return out


def evaluations():
    enf = make_enforcer("new")
    out = []
    for s, persona, target in EVAL_CASES:
        creds = make_context(PERSONAS[persona]).to_policy_values()
        creds = dict(creds)
        if creds.get("system_scope"):
            creds["system"] = creds["system_scope"]
        try:
            r = bool(_checks._check(_parser.parse_rule(s), target, creds,
                                    enf, None))
        except Exception as e:  # noqa
            r = "error: %s" % type(e).__name__
        out.append({"rule": s, "persona": persona, "target": target,
                    "result": r})
    return out


def main():
    data = {
        "versions": {
            "openstack-placement": metadata.version("openstack-placement"),
            "oslo.policy": metadata.version("oslo.policy"),
        },
        "defaults": {
            "enforce_new_defaults": _default_enforce_new_defaults(),
            "has_enforce_scope_option": _has_enforce_scope(),
        },
        "personas": PERSONAS,
        "target": TARGET,
        "parse": parse_trees(),
        "evaluate": evaluations(),
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = {None: None}
        for scen, text in OPERATOR_FILES.items():
            path = os.path.join(tmp, scen + ".yaml")
            with open(path, "w") as f:
                f.write(text)
            files[scen] = path
        for scen, path in files.items():
            key = scen or "defaults"
            data["scenarios"][key] = {}
            for mode in ("new", "legacy"):
                enf = make_enforcer(mode, path)
                data["scenarios"][key][mode] = {
                    "decisions": matrix(enf),
                    "evaluated": evaluated(enf),
                }
        # oslopolicy-sample-generator --namespace placement
        sample = os.path.join(tmp, "sample.yaml")
        generator._generate_sample(["placement"], sample)
        with open(sample) as f:
            open(os.path.join(HERE, "sample-policy.yaml"), "w").write(f.read())
        # oslopolicy-policy-generator --namespace placement, with the
        # operator file as policy_file.
        enf = make_enforcer("new", files["operator"])
        generator._get_enforcer = lambda namespace: enf
        eff = os.path.join(tmp, "effective.yaml")
        generator._generate_policy("placement", eff)
        with open(eff) as f:
            open(os.path.join(HERE, "effective-policy.yaml"), "w").write(
                f.read())
    with open(os.path.join(HERE, "oslo_expectations.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def _default_enforce_new_defaults():
    conf = cfg.ConfigOpts()
    policy_opts.set_defaults(conf)
    conf([], default_config_files=[])
    return conf.oslo_policy.enforce_new_defaults


def _has_enforce_scope():
    conf = cfg.ConfigOpts()
    policy_opts.set_defaults(conf)
    conf([], default_config_files=[])
    return "enforce_scope" in conf.oslo_policy


if __name__ == "__main__":
    main()
