@failover
Feature: Failover: losing the primary site loses at most one replication interval
  The primary site loses power: its storage is fenced, the VM's I/O halts abruptly, and the VM restarts on
  the other site from the replicated data (the guest runs its crash recovery). The VM writes for three of
  the environment's own replication intervals, so the same feature fits a 5-second lab and a 5-minute
  cluster schedule.

  @regional
  Scenario: Regional-DR failover after a power loss on site a
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
    And the VM serves again on site b within 2m

