@negative @metro
Feature: Negative control: Metro-DR failover without fencing lets the old site write again
  Site a freezes with its VM; the VM is failed over to site b without fencing (site a neither cut off nor
  blocklisted); site a thaws and its VM, still holding the disk open, writes again beside the new one. The
  split-brain check must catch the old writer's acknowledged writes after the failover. Expected to FAIL.

  @smoke
  Scenario: Failover without fencing, the old site thawed: split brain
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And site a freezes
    And the VM is failed over to site b without fencing
    And site a thaws
    And the VM runs for 15s
    Then every write the old VM attempts after the fence fails
