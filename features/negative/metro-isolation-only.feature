@negative @metro
Feature: Negative control: a fence that is only the harness's own isolation does not count
  Site a freezes with its VM; the VM is failed over to site b with the site cut off by the harness but no
  storage fence (no blocklist). The harness's isolation is not the system's fence: once the site is
  reconnected and thawed, the old VM writes again beside the new one, and the split-brain check must say
  so. Expected to FAIL.

  Scenario: Failover fenced only by the harness's isolation, then reconnected: split brain
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And the VM's writes so far are replicated to site b
    And site a freezes
    And the VM is failed over to site b without the storage fence
    And site a thaws
    And site a is reconnected
    And the VM runs for 15s
    Then every write the old VM attempts after the fence fails
