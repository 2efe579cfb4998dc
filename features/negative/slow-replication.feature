@negative @regional
Feature: Negative control: replication that lags past its allowance must fail the drill
  A slow snapshot must never widen the Regional-DR bound. Replication to the survivor is frozen for several
  intervals (its rbd-mirror daemon stopped, not killed) and then catches up before the failover: the data
  may well be within the interval at the fault, but replication broke its promise on the way. Expected to
  FAIL with "replication lagged".

  Scenario: Failover after replication to site b lagged for several intervals
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 8s
    And replication to site b pauses
    And the VM runs for 14s
    And replication to site b resumes
    And the VM runs for 6s
    And site a loses power
    And the VM is failed over to site b
    Then the data loss window is at most the replication interval
