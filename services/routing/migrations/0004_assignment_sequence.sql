-- Orders assignment changes for consumers that may see events out of order.
CREATE SEQUENCE assignment_sequence;
