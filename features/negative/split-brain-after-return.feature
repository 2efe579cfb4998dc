@negative @regional
Feature: Negative control: a site that comes back unrepaired after a forced promote is a second primary
  Site a loses power and the VM is failed over to b by a forced promote. Site a comes back and nothing
  repairs it: its image is still primary. Both sites' storage now claims the VM's disk: the role check must
  name the split brain. Expected to FAIL.

  Scenario: A site back without repair: split brain named
    Given a Regional-DR environment with sites a and b
    And a VM writing 50 records per second on site a
    When the VM runs for 3 replication intervals
    And site a loses power
    And the VM is failed over to site b
    And site a comes back without repair
    Then site b is the VM's only primary
