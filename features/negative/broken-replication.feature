@negative @regional
Feature: Negative control: broken replication must fail the drill
  If the drill said "no loss" here, it could not be trusted anywhere. The scenario is expected to FAIL.

  Scenario: Failover after replication to site b stopped
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 6s
    And replication to site b stops
    And the VM runs for 15s
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
