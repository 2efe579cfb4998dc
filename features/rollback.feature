@known-defect @rollback @regional
Feature: Known defect: a forced promote in the middle of a round rolls the survivor back below a complete snapshot
  Ceph 16.2.15, snapshot mirroring: the primary site loses power while rbd-mirror on the survivor copies a
  round; the forced promote rolls the image back to the newest snapshot complete there (its own debug log
  names it, and the survivor listed it complete before the promote), yet records acknowledged before that
  snapshot was taken are missing: the survivor holds less than the snapshot it reported complete. Upstream
  this is the class of Ceph tracker 53537 (fix proposed in PR 45375, not merged). The drill names it
  ("the survivor was rolled back below snapshot b/68, which it had reported complete (its forced promote
  rolled back to b/68 ...)") with each image's snapshot list before and after the promote in
  summary.json. Rate measured here: see the README (Fleets). Out of the default run, never retried:
  `dr-drill run --tags @rollback`.

  Scenario: 4 VMs fail over with their site lost in the middle of a replication round
    Given a Regional-DR lab with sites a and b
    And 4 VMs writing 20 records per second on site a
    When the VMs run for 3 replication intervals
    And the VMs' writes so far are replicated to site b
    And the VMs run for 4s
    And site a loses power
    And the VMs are failed over to site b
    Then the data loss window is at most the replication interval
