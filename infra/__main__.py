"""K2's Pulumi program (`pulumi up` of Pulumi.yaml): everything is in `k2stack.pulumi.program`."""

from k2stack.pulumi.program import declare

declare()
