@fleet @regional
Feature: Fleet: an application of many VMs moves as one, each VM judged on its own evidence
  Ramen protects applications, not single disks: a DRPlacementControl relocates or fails over every VM of
  an application at once. Here eight VMs write side by side; each DR action acts on all of them (the
  driver promotes their disks side by side where it can, the guests boot side by side), and every verdict
  sentence judges each VM against the action's promise on its own. The summary has each VM's verdict and
  the fleet's least, median and greatest loss window and time to serve. Out of the default run (it takes
  minutes on the lab): `dr-drill run --tags @fleet`.

  The power loss lands right after a replication round completed for every VM (the harness takes every
  image's snapshot in the same round, as Ceph's own schedule does): a loss in the middle of a round meets
  a defect of Ceph 16.2.15's forced promote, which has its own drill (features/rollback.feature,
  @known-defect).

  Scenario: 8 VMs relocated, then failed over after a power loss, each VM judged on its own
    Given a Regional-DR lab with sites a and b
    And 8 VMs writing 20 records per second on site a
    When the VMs run for 2 replication intervals
    And the VMs are relocated to site b
    Then no acknowledged write is lost
    And the STOP record of the graceful shutdown survives
    And the VMs serve again on site b within 2m
    And site b is every VM's only primary
    When the VMs run for 3 replication intervals
    And the VMs' writes so far are replicated to site a
    And site b loses power
    And the VMs are failed over to site a
    Then the data loss window is at most the replication interval
    And the VMs serve again on site a within 2m
    And site a is every VM's only primary
