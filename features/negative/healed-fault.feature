@negative @regional
Feature: Negative control: an outage healed long before the failover is not the fault that counts
  Sites a and b are partitioned and healed at once; later replication to b stops, the VM writes on for four
  intervals, and site a loses power. The failover counts from the power loss (the outage still in force),
  not from the healed partition: everything written since replication stopped is lost, beyond the bound.
  Counted from the partition, the loss window would read 0 ms. Expected to FAIL.

  Scenario: A healed partition, replication stopped, then a power loss
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When sites a and b are partitioned
    And the partition between sites b and a heals
    And the VM runs for 2 replication intervals
    And the VM's writes so far are replicated to site b
    And replication to site b stops
    And the VM runs for 4 replication intervals
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
