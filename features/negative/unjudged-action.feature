@negative @regional
Feature: Negative control: a DR action is judged against its own promise whatever the scenario asks
  Replication to site b stops, the VM writes on for four intervals, site a loses power and the VM fails
  over. The scenario asks only for the time to serve again; the failover's own promise (the loss window
  within the declared bound) is judged all the same, and fails it. Expected to FAIL.

  Scenario: A lossy failover asked only for its recovery time
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 2 replication intervals
    And the VM's writes so far are replicated to site b
    And replication to site b stops
    And the VM runs for 4 replication intervals
    And site a loses power
    And the VM is failed over to site b
    Then the VM serves again on site b within 2m
