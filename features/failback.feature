@failback
Feature: The whole DR cycle: fail over, the lost site comes back and is repaired, fail back
  A failover is not the end of a disaster: the lost site comes back, is repaired the way the DR operator
  does it, and the VM moves back to it with a planned relocate. Each action is judged on its own promise
  over the writers since the action before it, and after each the storage must report exactly one primary.

  The power loss lands right after a round completed on the survivor ("the VM's writes so far are replicated"):
  one while rbd-mirror is copying a round meets a defect of Ceph 16.2.15's forced promote (the survivor
  rolled back below a snapshot it reported complete; features/rollback.feature, @known-defect, out of the
  default run; rate in features/failover.feature and the README).

  @regional
  Scenario: Regional-DR: fail over to b, site a comes back and is resynced, relocate back to a
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And the VM's writes so far are replicated to site b
    And site a loses power
    And the VM is failed over to site b
    Then site b is the VM's only primary
    When site a comes back
    And the VM runs for 2 replication intervals
    And the VM is relocated to site a
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives
    And site a is the VM's only primary
    And the VM serves again on site a within 2m

  @metro
  Scenario: Metro-DR: fail over to b, site a comes back and is clean again, relocate back to a
    Given a Metro-DR environment with sites a and b
    And a VM writing 100 records per second on site a
    When the VM has written 300 records
    And site a loses power
    And the VM is failed over to site b
    Then site b is the VM's only primary
    When site a comes back
    And the VM runs for 10s
    And the VM is relocated to site a
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives
    And site a is the VM's only primary
