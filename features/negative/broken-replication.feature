@negative @regional
Feature: Negative control: broken replication must fail the drill, whatever the scenario asks
  If the drill said "no loss" here, it could not be trusted anywhere. Replication to site b stops, the VM
  writes on, site a loses power and the VM fails over. The scenario asks only for the time to serve again:
  the failover is judged against its own promise all the same (the loss window within the declared bound),
  and fails it. Expected to FAIL.

  Scenario: Failover after replication to site b stopped, asked only for its recovery time
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 6s
    And replication to site b stops
    And the VM runs for 15s
    And site a loses power
    And the VM is failed over to site b
    Then the VM serves again on site b within 2m
