@negative @regional
Feature: Negative control: a relocate that does not wait for the sync barrier must fail the drill
  Replication to site b is stopped, then the VM is relocated and site b promoted by force right after the
  demotion, without waiting for the demotion snapshot to arrive. What the VM wrote since the last snapshot
  that reached b, and its STOP record, are gone. A record damaged on disk afterwards cannot swap the
  relocate's evidence (its history and STOP record are frozen when it ends, and it is judged then): the
  lost records are named. Expected to FAIL.

  Scenario: Relocate promoted without waiting for the sync barrier, then a record damaged
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And replication to site b stops
    And the VM has written 400 records
    And the VM is relocated to site b without waiting for the sync barrier
    And record 50 of the VM's disk is corrupted on site b
    Then no acknowledged write is lost
