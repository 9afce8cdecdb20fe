-- XAntragsstatus 2.0.0 (docs/xantragsstatus.md): version 1's 420 "Rechtsbehelfsfrist läuft" is version 2's 410
-- "Bescheid bekanntgegeben"; version 2's 420 means "bestandskräftig". Every row stored before this migration was
-- stored from a version 1 message (status-web reads only messages of the schema it validates against), so each
-- stored 420 is an old one. Version 1's 410 keeps its code.
UPDATE status SET status = '410', data = jsonb_set(data::jsonb, '{status}', '"410"')::text WHERE status = '420';
