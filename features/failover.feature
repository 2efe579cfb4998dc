@failover
Feature: Failover: losing the primary site loses at most one replication interval
  The primary site loses power: its storage is fenced, the VM's I/O halts abruptly, and the VM restarts on
  the other site from the replicated data (the guest runs its crash recovery). The VM writes for three of
  the environment's own replication intervals, so the same feature fits a 5-second lab and a 5-minute
  cluster schedule.

  The power loss lands right after a round completed on the survivor ("the VM's writes so far are
  replicated"): a loss while rbd-mirror is copying a round meets a defect of Ceph 16.2.15's forced promote,
  which rolls the survivor back below a snapshot it reported complete (its drill is tagged @known-defect,
  features/rollback.feature, out of the default run). Measured in a 20-run flake campaign stopped at 8 runs, with the
  cut at an arbitrary moment: 3 of 32 failovers found a round in copy at the cut, and all 3 lost records
  acknowledged before the snapshot they rolled back to; none of the other 29 did.

  @regional
  Scenario: Regional-DR failover after a power loss on site a
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And the VM's writes so far are replicated to site b
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
    And the VM serves again on site b within 2m

