@negative @regional
Feature: Negative control: damage after a lossy relocate cannot swap the relocate's evidence
  A relocate promoted without the sync barrier after replication stopped loses acknowledged records and
  its STOP record; a record is then damaged on disk. The relocate's history and STOP record were frozen
  when it ended: the loss is judged (at the relocate itself, and again by the verdict sentence), never
  replaced by the damaged disk's later writers. Expected to FAIL, naming the lost records.

  Scenario: A lossy relocate, then a record damaged
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And replication to site b stops
    And the VM has written 400 records
    And the VM is relocated to site b without waiting for the sync barrier
    And record 50 of the VM's disk is corrupted on site b
    Then no acknowledged write is lost
