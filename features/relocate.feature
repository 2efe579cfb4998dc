@relocate
Feature: Relocate: a planned move loses no acknowledged write
  The VM is shut down gracefully, unreplicated data is synced, and the VM starts on the other site.

  @regional
  Scenario: Relocate a writing VM from site a to site b
    Given a Regional-DR lab with sites a and b
    And a VM writing 50 records per second on site a
    When the VM has written 200 records
    And the VM is relocated to site b
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives
    And the VM serves again on site b within 2m
