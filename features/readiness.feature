@readiness
Feature: DR readiness of the manifests a drill protects
  The lint checks (from the OpenShift Virtualization DR guidance) as a step: a drill can start with them.

  Scenario: The billing application's manifests are ready for Regional-DR
    Given the manifests in "tests/fixtures/gitops/apps/billing" pass the DR readiness checks
