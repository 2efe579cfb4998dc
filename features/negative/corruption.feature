@negative @regional
Feature: Negative control: a corrupted record must be reported
  A record damaged on disk after a relocation must be reported as corruption. Expected to FAIL.

  Scenario: Relocate, then damage one record on site b
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 100 records
    And the VM is relocated to site b
    And record 50 of the VM's disk is corrupted on site b
    Then no acknowledged write is lost
