@negative @regional
Feature: Negative control: a failback onto a stale copy loses what was written after the failover
  Site a loses power, the VM fails over to b and writes there. Site a comes back and its stale image is
  demoted but never resynced from b; the VM is then moved back promoting a's copy as it is. What the VM
  acknowledged on b after the failover is not on a: the drill must name those records. Expected to FAIL.

  Scenario: Failback without the resync
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And site a loses power
    And the VM is failed over to site b
    And site a comes back without the resync
    And the VM runs for 2 replication intervals
    And the VM is relocated to site a without waiting for the sync barrier
    Then no acknowledged write is lost
