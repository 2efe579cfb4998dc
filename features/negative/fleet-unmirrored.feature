@negative @regional
Feature: Negative control: a VM of an application left out of mirroring fails the failover, named
  An application's protection that does not select one of its disks (a PVC without the DRPC's label)
  leaves that VM with no copy, or a stale one, on the other site. The application fails over as one; the
  VM left out must fail, named, and the others must pass on their own evidence (the power is lost right
  after a round completed for them: see features/rollback.feature for a loss in the middle of a round).
  Expected to FAIL.

  Scenario: Failover of 3 VMs, the second left out of mirroring
    Given a Regional-DR lab with sites a and b
    And 3 VMs writing 20 records per second on site a, VM 2 left out of mirroring
    When the VMs run for 3 replication intervals
    And the VMs' writes so far are replicated to site b
    And site a loses power
    And the VMs are failed over to site b
    Then the data loss window is at most the replication interval
