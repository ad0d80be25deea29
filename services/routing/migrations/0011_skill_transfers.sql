-- Skill transfers: offered to the agents having a skill, one after another.
ALTER TABLE transfers ADD COLUMN to_skill TEXT NOT NULL DEFAULT '';
