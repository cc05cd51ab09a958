# An external policy over orgctl's JSON plan (docs/cli.md, "Policy engines: OPA and conftest").
#
#   orgctl plan config --format json > plan.json
#   conftest test --policy examples/policy plan.json
#
# The input is the plan document; its schema is 'orgctl schema --plan'. These rules are examples of
# what orgctl's own `policies:` do not say: they read the plan's changes and its policy results.
package main

import rego.v1

# No plan may give anyone the owner role outside the change window's reviewers: flag every new owner.
warn contains msg if {
	some change in input.changes
	change.kind == "member"
	some field in change.fields
	field.name == "role"
	field.after == "owner"
	field.before != "owner"
	msg := sprintf("%s becomes an owner: a second reviewer must approve this plan", [change.address])
}

# Deleting an SSO provider locks people out: never from a pull request.
deny contains msg if {
	some change in input.changes
	change.kind == "sso-provider"
	change.action == "delete"
	msg := sprintf("%s is deleted: remove SSO providers by hand, with the tenant's consent", [change.address])
}

# A plan whose mandatory orgctl policy fails is already invalid; make the pipeline say so too.
deny contains msg if {
	input.policySummary.mandatoryFailed
	msg := "a mandatory orgctl policy fails: see the plan's Policy checks"
}

# Every failing orgctl policy that apply would refuse, one message each.
deny contains msg if {
	some check in input.policyChecks
	check.status == "fail"
	check.enforcement != "advisory"
	msg := sprintf("orgctl policy %s (%s) fails at %d address(es)", [check.policy, check.enforcement, count(check.violations)])
}

# The plan format this policy was written for.
deny contains msg if {
	input.formatVersion != 1
	msg := sprintf("plan formatVersion %v is not 1: review this policy against 'orgctl schema --plan'", [input.formatVersion])
}
