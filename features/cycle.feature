@cycle @slow
Feature: Longer DR cycles: several actions in one scenario, each judged on its own promise
  Each action is judged over the writers since the action before it, and the storage's roles are read after
  every one. Tagged @slow: out of the default run and of `cargo test`; `dr-drill run --tags @cycle` (and
  with `--env environments/lab-metro.yaml`) runs them.

  @regional
  Scenario: Relocate to b, then relocate back to a
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And the VM is relocated to site b
    Then site b is the VM's only primary
    When the VM has written 200 records
    And the VM is relocated to site a
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives
    And site a is the VM's only primary

  @regional
  Scenario: Fail over to b, a comes back; later b is lost and the VM fails over back to a
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And site a loses power
    And the VM is failed over to site b
    And site a comes back
    And the VM runs for 3 replication intervals
    And site b loses power
    And the VM is failed over to site a
    Then the data loss window is at most the replication interval
    And site a is the VM's only primary
    When site b comes back
    Then site a is the VM's only primary

  @regional
  Scenario: Relocate to b, then fail over back to a
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And the VM is relocated to site b
    And the VM runs for 3 replication intervals
    And site b loses power
    And the VM is failed over to site a
    Then the data loss window is at most the replication interval
    And site a is the VM's only primary
